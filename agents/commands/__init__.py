"""The library behind ``mira run`` and ``mira eval`` (the command-line parsing lives in :mod:`mira_env.train.commands`)."""

#: shapes-world tasks played by ``mira run`` and ``mira eval`` when no count is given: 8, eval's old default (run
#: played 4): enough tasks that a table's 95% intervals say something, still seconds on a CPU
SHAPES_DEFAULT_TASKS = 8


def resolve_play_settings(settings: object) -> dict:
    """The settings of ``mira run`` / ``mira eval`` (a dataclass with ``task_file``, ``tasks``, ``max_steps``) as a
    run folder's ``run.json`` records them: every default resolved (the task count, the step budget), plus the task
    file's content fingerprint and the shapes generator's version."""
    from dataclasses import asdict

    from mira_env.config import EditEnvConfig
    from mira_env.runs import fingerprint
    from mira_env.shapes.env import DEFAULT_MAX_STEPS
    from mira_env.shapes.generator import GENERATOR_VERSION

    shapes = settings.task_file is None
    data = asdict(settings)
    data["tasks"] = settings.tasks or (SHAPES_DEFAULT_TASKS if shapes else "all")
    data["max_steps"] = settings.max_steps or (DEFAULT_MAX_STEPS if shapes else EditEnvConfig().max_steps)
    data["task_file_fingerprint"] = fingerprint(settings.task_file)
    data["task_generator"] = GENERATOR_VERSION if shapes else None
    return data
