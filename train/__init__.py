"""SFT and GRPO on TRL and the ``mira`` CLI, installed as ``mira_env.train``.

The folder sits at the repository top (the project layout); it has no top-level import name of its
own (PyPI has a ``train`` package and users have their own ``train.py``). Layering: the top layer;
it may import every other part of ``mira_env``.
"""

if __name__ != "mira_env.train":  # the repository folder reached under its bare name (cwd on sys.path)
    raise ImportError(f"this folder is the package mira_env.train of mira-env, imported as {__name__!r}; "
                      "import mira_env.train (pip install -e . from the repository root)")
