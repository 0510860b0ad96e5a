"""``mira serve editor``: serve any editor spec over HTTP (Ray Serve replicas, or one process).

Flags are generated from :class:`mira_env.serve.config.ServeConfig` (``--editor``, ``--replicas``,
``--gpus_per_replica``, ``--cpus_per_replica``, ``--max_batch``, ``--batch_wait_ms``, ``--host``, ``--port``,
``--address``, ``--backend``, ...), plus ``--config FILE.yaml`` (the command line wins). It stops cleanly on
SIGINT / SIGTERM. The service lives in :mod:`mira_env.serve`; see docs/serving.md.
"""

from __future__ import annotations

import argparse

from mira_env.train.config import add_command_arguments, resolve_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mira_env.serve.config import ServeConfig

    add_command_arguments(parser, [(ServeConfig, "editor service")])


def main(args: argparse.Namespace) -> int:
    from mira_env.serve import ServeConfig, serve_until_signal, start_editor_service

    (config,) = resolve_config([ServeConfig], args)
    return serve_until_signal(start_editor_service(config), "editor service")
