"""Policies and rollouts of mira-env, installed as ``mira_env.agents``.

The folder sits at the repository top (the project layout); it has no top-level import name of its
own (``agents`` is the OpenAI Agents SDK's). Layering: may import ``mira_env`` core and
``mira_env.rewards``; never ``mira_env.train``.
"""

if __name__ != "mira_env.agents":  # the repository folder reached under its bare name (cwd on sys.path)
    raise ImportError(f"this folder is the package mira_env.agents of mira-env, imported as {__name__!r}; "
                      "import mira_env.agents (pip install -e . from the repository root)")
