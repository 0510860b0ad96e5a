"""The ``mira`` command line: help without heavy imports, every subcommand module importable."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from mira_env.train.cli import SUBCOMMANDS, build_parser, main


def test_help_lists_every_subcommand_without_importing_torch():
    code = ("import sys; from mira_env.train.cli import main; import contextlib, io\n"
            "buf = io.StringIO()\n"
            "with contextlib.redirect_stdout(buf):\n    rc = main([])\n"
            "print(rc, 'torch' in sys.modules); print(buf.getvalue())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    first, rest = out.split("\n", 1)
    assert first == "2 False"
    for name in ("run", "eval", "export", "audit-rewards", "train"):
        assert name in rest


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_each_subcommand_module_has_the_cli_contract(name):
    module = importlib.import_module(SUBCOMMANDS[name][0])
    assert callable(module.add_arguments) and callable(module.main)


def test_unknown_subcommand_is_rejected(capsys):
    with pytest.raises(SystemExit):
        main(["fly"])
    assert "invalid choice: 'fly'" in capsys.readouterr().err


def test_parser_has_train_group():
    parser = build_parser()
    args, _ = parser.parse_known_args(["train", "grpo"])
    assert args._module == "mira_env.train.grpo"


def test_subcommand_help_shows_its_own_arguments(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--help"])
    assert exit_info.value.code == 0
    assert "--out" in capsys.readouterr().out
