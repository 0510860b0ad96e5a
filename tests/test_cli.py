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
    assert args._module == "mira_env.train.commands.train_grpo"


def test_subcommand_help_shows_its_own_arguments(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--help"])
    assert exit_info.value.code == 0
    assert "--out" in capsys.readouterr().out


def test_train_help_lists_sft_and_grpo(capsys):
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: mira train <subcommand> [options]")
    assert "\n  sft " in out and "\n  grpo " in out
    assert main(["train"]) == 2  # no subcommand: the same list, as an error
    assert "grpo" in capsys.readouterr().err


@pytest.mark.parametrize("kind, line", [
    ("config", "mira probe: error: num_tasks=0 (type int) must be a positive int"),
    ("value", "mira probe: error: learning_rate=-1.0 must be positive; pass --learning_rate 1e-5"),
    ("missing", 'mira probe: error: the \'diffusers\' package is not installed; install it with: '
                'pip install "mira-env[editors]"'),
    ("chained", "mira probe: error: the judge endpoint failed <- caused by: ConnectionError: server echoed key *** "
                "second line"),
    ("bug", "mira probe: error: unsupported operand type(s) for +: 'int' and 'str'"),
])
def test_every_cli_error_is_one_redacted_line_with_status_2(monkeypatch, capsys, kind, line):
    from mira_env.redact import clear_secrets

    monkeypatch.setitem(SUBCOMMANDS, "probe", ("tests._cli_probe", "a failing probe"))
    try:
        assert main(["probe", "--fail", kind]) == 2
    finally:
        clear_secrets()
    captured = capsys.readouterr()
    assert captured.err == line + "\n" and captured.out == ""


def test_argparse_errors_keep_its_usage_line_and_status_2(monkeypatch, capsys):
    monkeypatch.setitem(SUBCOMMANDS, "probe", ("tests._cli_probe", "a failing probe"))
    with pytest.raises(SystemExit) as exit_info:
        main(["probe", "--fail", "nope"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("usage: mira probe") and err[-1].startswith("mira probe: error: argument --fail")


def test_mira_debug_reraises(monkeypatch):
    monkeypatch.setitem(SUBCOMMANDS, "probe", ("tests._cli_probe", "a failing probe"))
    monkeypatch.setenv("MIRA_DEBUG", "1")
    with pytest.raises(TypeError):
        main(["probe", "--fail", "bug"])
