"""A stand-in ``mira`` subcommand for tests/test_cli.py: its ``main`` fails in the way ``--fail`` names."""

from __future__ import annotations

import argparse

from mira_env.errors import ConfigError
from mira_env.redact import register_secret


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fail", choices=["config", "value", "missing", "chained", "bug"], required=True)


def main(args: argparse.Namespace) -> int:
    if args.fail == "config":
        raise ConfigError("num_tasks=0 (type int) must be a positive int")
    if args.fail == "value":
        raise ValueError("learning_rate=-1.0 must be positive; pass --learning_rate 1e-5")
    if args.fail == "missing":
        raise ModuleNotFoundError("No module named 'diffusers'", name="diffusers")
    if args.fail == "chained":
        register_secret("probe-secret-7788")
        try:
            raise ConnectionError("server echoed key probe-secret-7788\nsecond line")
        except ConnectionError as exc:
            raise ConfigError("the judge endpoint failed") from exc
    raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")
