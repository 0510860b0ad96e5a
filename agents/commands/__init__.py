"""The library behind ``mira run`` and ``mira eval`` (the command-line parsing lives in :mod:`mira_env.train.commands`)."""

#: shapes-world tasks played by ``mira run`` and ``mira eval`` when no count is given: 8, eval's old default (run
#: played 4): enough tasks that a table's 95% intervals say something, still seconds on a CPU
SHAPES_DEFAULT_TASKS = 8
