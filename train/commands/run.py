"""``mira run``: play episodes for a set of agents and write a run folder with an HTML report.

Flags: the fields of :class:`mira_env.agents.commands.run.RunSettings` and :class:`RunCommand`; the run itself is
:func:`mira_env.agents.commands.run.play`.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from mira_env.agents.commands.run import RunSettings
from mira_env.train.config import OldFlag, add_command_arguments, dash_flags, resolve_config


@dataclass
class RunCommand:
    """How this invocation of ``mira run`` behaves (not recorded with the run)."""

    name: str | None = field(default=None, metadata={"help": "Run name: the folder runs/<name> (unless --out)."})
    restart: bool = field(default=False, metadata={
        "help": "Clear the run folder's results when its recorded settings differ, and start over."})
    progress: bool = field(default=True, metadata={"help": "Show a progress bar."})
    tiny_vlm: bool = field(default=False, metadata={
        "help": "Also play a tiny random VLM built offline (agent 'vlm:tiny'; plumbing only)."})


OLD_FLAGS = [*dash_flags([RunSettings], "group_size", "groups_per_batch", "groups_per_task", "max_steps", "task_file",
                         "report_templates"),
             OldFlag("--tiny-vlm", "tiny_vlm", True), OldFlag("--no-baseline", "baseline", False),
             OldFlag("--no-progress", "progress", False), OldFlag("--editor-option", "editor_options", key_value=True),
             OldFlag("--vlm-option", "vlm_options", key_value=True)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_command_arguments(parser, [(RunSettings, "run settings"), (RunCommand, "command")], OLD_FLAGS)


def resolve(args: argparse.Namespace | dict | None = None) -> tuple[RunSettings, RunCommand]:
    """``(RunSettings, RunCommand)`` from defaults <- ``--config`` YAML <- flags, every command default filled in:
    ``vlm:tiny`` added for ``--tiny_vlm``, the folder from ``--name`` (or the time), the trained step budget."""
    from mira_env.agents.specs import trained_step_budget

    settings, command = resolve_config((RunSettings, RunCommand), args)
    agents = list(settings.agents) + (["vlm:tiny"] if command.tiny_vlm and "vlm:tiny" not in settings.agents else [])
    out = settings.out or str(Path("runs") / (command.name or time.strftime("run-%Y%m%d-%H%M%S")))
    return replace(settings, agents=agents, out=out, max_steps=settings.max_steps or trained_step_budget(agents)), command


def main(args: argparse.Namespace) -> int:
    from mira_env.agents.commands.baseline import BASELINE_DIR, BASELINE_NOTE
    from mira_env.agents.commands.run import SUMMARY_COLUMNS, SUMMARY_FILE, play
    from mira_env.agents.report import format_table, summarize

    settings, command = resolve(args)
    out, records, report = play(settings, progress=command.progress, restart=command.restart)
    rows = summarize(records)
    columns = [c for c in SUMMARY_COLUMNS if c == "name" or any(row.get(c) is not None for row in rows)]
    baseline_file = out / BASELINE_DIR / SUMMARY_FILE
    baseline = json.loads(baseline_file.read_text(encoding="utf-8")) if settings.baseline and \
        baseline_file.is_file() else []
    print(format_table(rows + baseline, columns, intervals=True))
    if baseline:
        print(BASELINE_NOTE)
    print(f"episodes: {out / 'episodes.jsonl'}")
    print(f"report:   {report}")
    return 0
