"""The ``mira`` command line: ``mira <subcommand>``.

It lives in ``train`` because that is the one package allowed to import all the others. Each
subcommand is a module of :mod:`mira_env.train.commands` with ``add_arguments(parser)`` and ``main(args) -> int``,
imported only when that subcommand runs, so ``mira --help`` stays fast and needs no torch. Every flag is generated
from a dataclass field (:mod:`mira_env.train.config`), in TRL's ``--snake_case`` style, and every subcommand takes
``--config FILE.yaml``; old dash spellings warn once and keep working for one release.

Errors never end in a bare traceback: a bad value, a missing optional package or a failed run prints
ONE line ``mira <command>: error: <what is wrong and the fix>`` (redacted: no credential reaches the
console) and exits with status 2, after argparse's usage line where argparse prints one. A missing
package names the ``pip install "mira-env[<extra>]"`` that brings it. ``MIRA_DEBUG=1`` re-raises
unexpected exceptions with their traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

#: subcommand -> (module, one-line help). Nested groups use a space ("train sft").
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("mira_env.train.commands.run", "play shapes-world (or task-file) episodes for a set of agents; write a report"),
    "eval": ("mira_env.train.commands.eval", "agents x editors x task set -> metrics table (CSV, JSON, HTML)"),
    "export": ("mira_env.train.commands.export", "export generated tasks and oracle trajectories (MIRA-Editing format)"),
    "audit-rewards": ("mira_env.train.commands.audit_rewards", "rank-correlate every reward term with the shapes-world oracle"),
    "train sft": ("mira_env.train.commands.train_sft", "supervised fine-tuning on MIRA-Editing trajectories (TRL SFTTrainer)"),
    "train grpo": ("mira_env.train.commands.train_grpo", "multi-turn GRPO against the editing environment (TRL GRPOTrainer)"),
    "serve editor": ("mira_env.train.commands.serve_editor", "serve an editor over HTTP (Ray Serve replicas, dynamic batching)"),
    "serve judge": ("mira_env.train.commands.serve_judge", "serve a local VLM judge as an OpenAI-compatible endpoint"),
    "data build": ("mira_env.train.commands.data_build", "multi-turn editing sessions -> MIRA-Editing records (merge, rank, paraphrase)"),
}


#: top-level import name of an optional package -> the extra that installs it
EXTRAS = {"torch": "train", "torchvision": "train", "transformers": "agents", "trl": "train", "peft": "train",
          "accelerate": "train", "datasets": "datasets", "diffusers": "editors", "open_clip": "rewards",
          "lpips": "rewards", "scipy": "rewards", "matplotlib": "train", "httpx": "agents", "ray": "serve",
          "editscore": "editscore", "json_repair": "editscore", "pyiqa": "iqa", "jinja2": "train"}


def error_line(command: str, exc: BaseException) -> str:
    """The one ``error:`` line for ``exc`` raised by ``mira <command>``."""
    from mira_env.errors import error_message

    if isinstance(exc, ModuleNotFoundError) and exc.name:
        top = exc.name.split(".")[0]
        if top in EXTRAS:
            return (f"mira {command}: error: the '{top}' package is not installed; install it with: "
                    f'pip install "mira-env[{EXTRAS[top]}]"')
    return f"mira {command}: error: {error_message(exc)}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mira", description="mira-env: RL for agentic image editing")
    subparsers = parser.add_subparsers(dest="command", metavar="<command>")
    groups: dict[str, argparse._SubParsersAction] = {}
    for name, (module, help_text) in SUBCOMMANDS.items():
        parts = name.split()
        target = subparsers
        if len(parts) == 2:
            if parts[0] not in groups:
                group = subparsers.add_parser(parts[0], help=f"{parts[0]} subcommands")
                groups[parts[0]] = group.add_subparsers(dest="subcommand", metavar="<subcommand>")
            target = groups[parts[0]]
        sub = target.add_parser(parts[-1], help=help_text, description=help_text)
        sub.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # Parse just enough to find the subcommand (help flags held back, so that `mira <cmd> --help`
    # shows the subcommand's own arguments), then let its module add its arguments.
    wants_help = [a for a in argv if a in ("-h", "--help")]
    head = [a for a in argv if a not in ("-h", "--help")]
    if wants_help and not head:
        parser.print_help()
        return 0
    known, _ = parser.parse_known_args(head)
    module_name = getattr(known, "_module", None)
    if module_name is None:
        group = getattr(known, "command", None)
        if group is not None:  # `mira train` / `mira train --help`: the group's subcommands
            print(_group_help(parser, group), file=sys.stdout if wants_help else sys.stderr)
            return 0 if wants_help else 2
        parser.print_help()
        return 2
    name = " ".join(a for a in (known.command, getattr(known, "subcommand", None)) if a)
    try:
        module = importlib.import_module(module_name)
        sub = argparse.ArgumentParser(prog=f"mira {name}", description=SUBCOMMANDS[name][1])
        module.add_arguments(sub)
        depth = len(name.split())
        args = sub.parse_args(argv[depth:])
        return int(module.main(args) or 0)
    except KeyboardInterrupt:
        print(f"mira {name}: interrupted", file=sys.stderr)
        return 130
    except SystemExit:
        raise
    except Exception as exc:  # the CLI prints one error line (MIRA_DEBUG=1 re-raises)
        if os.environ.get("MIRA_DEBUG"):
            raise
        print(error_line(name, exc), file=sys.stderr)
        return 2


def _group_help(parser: argparse.ArgumentParser, group: str) -> str:
    """The help of a command group (``mira train``): its usage and subcommands."""
    names = [(name.split()[1], help_text) for name, (_, help_text) in SUBCOMMANDS.items()
             if name.split()[0] == group and len(name.split()) == 2]
    width = max(len(n) for n, _ in names)
    lines = [f"usage: mira {group} <subcommand> [options]", "", f"{group} subcommands:"]
    lines += [f"  {n.ljust(width)}  {h}" for n, h in names]
    lines += ["", f"run 'mira {group} <subcommand> --help' for the options of one"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
