"""The ``mira`` subcommands, one module each: ``add_arguments(parser)`` and ``main(args) -> int``.

Every flag is generated from a dataclass field (its ``metadata["help"]``) by :mod:`mira_env.train.config`, in one
style, TRL's ``--snake_case``; every command takes ``--config FILE.yaml`` (flat ``name: value``; the command line
wins). Old dash spellings (``--num-tasks``) are accepted for one release with a one-line deprecation warning
(:class:`mira_env.train.config.OldFlag`). A module imports its heavy dependencies inside ``main`` /
``add_arguments`` only, so ``mira --help`` needs no torch. The library code stays in its package: these modules
parse flags and call it.
"""
