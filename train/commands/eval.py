"""``mira eval``: agents x editors x a task set -> a metrics table (CSV, JSON) and a side-by-side HTML report.

Flags: the fields of :class:`mira_env.agents.commands.evaluate.EvalSettings`, of
:class:`mira_env.agents.commands.metrics.MetricOptions` (the reward-model options shared with ``mira train grpo``
and ``mira audit-rewards``) and of :class:`EvalCommand`; the comparison itself is
:func:`mira_env.agents.commands.evaluate.evaluate`.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from mira_env.agents.commands.evaluate import EvalSettings
from mira_env.agents.commands.metrics import MetricOptions
from mira_env.train.config import OldFlag, add_command_arguments, dash_flags, resolve_config

#: the old dash spellings of the reward-model options (eval and audit-rewards had them)
REWARD_MODEL_OLD_FLAGS = dash_flags([MetricOptions], "clip_model", "clip_pretrained", "lpips_net", "judge_model",
                                    "judge_base_url", "reward_config")


@dataclass
class EvalCommand:
    """How this invocation of ``mira eval`` behaves (not recorded with the results)."""

    restart: bool = field(default=False, metadata={
        "help": "Clear the output folder's results when its recorded settings differ, and start over."})
    progress: bool = field(default=True, metadata={"help": "Show a progress bar."})
    tiny_vlm: bool = field(default=False, metadata={"help": "Add a tiny random offline VLM agent (vlm:tiny)."})
    tiny_editor: bool = field(default=False, metadata={
        "help": "Add a tiny random offline InstructPix2Pix editor (plumbing only)."})


OLD_FLAGS = [*dash_flags([EvalSettings], "task_file", "group_size", "groups_per_batch", "max_steps", "report_templates"),
             *REWARD_MODEL_OLD_FLAGS, *dash_flags([MetricOptions], "lpips_torch_home", "tiny_reward_models", "tiny_judge"),
             OldFlag("--tiny-vlm", "tiny_vlm", True), OldFlag("--tiny-editor", "tiny_editor", True),
             OldFlag("--no-baseline", "baseline", False), OldFlag("--no-progress", "progress", False),
             OldFlag("--editor-option", "editor_options", key_value=True),
             OldFlag("--vlm-option", "vlm_options", key_value=True)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_command_arguments(parser, [(EvalSettings, "eval settings"), (MetricOptions, "metrics and reward models"),
                                   (EvalCommand, "command")], OLD_FLAGS)


def tiny_editor_path() -> str:
    """Build (once) the tiny InstructPix2Pix pipeline and return its folder."""
    from mira_env.tiny.pipelines import build_tiny_pipeline
    from mira_env.tiny.vlm import default_path

    path = default_path().parent / "instruct-pix2pix-seed0"
    if not (path / "model_index.json").is_file():
        build_tiny_pipeline("instruct-pix2pix", path, seed=0)
    return str(path)


def resolve(args: argparse.Namespace | dict | None = None
            ) -> tuple[EvalSettings, MetricOptions, dict[str, tuple[str, dict]], EvalCommand]:
    """Settings, metric options, ``{editor label: (editor spec, editor options)}`` and the command options, from
    defaults <- ``--config`` YAML <- flags."""
    from mira_env.agents.specs import trained_step_budget

    settings, options, command = resolve_config((EvalSettings, MetricOptions, EvalCommand), args)
    agents = list(settings.agents) + (["vlm:tiny"] if command.tiny_vlm and "vlm:tiny" not in settings.agents else [])
    default_editor = "shapes" if settings.task_file is None else "identity"
    editor_options = dict(settings.editor_options)
    editors = {spec: (spec, editor_options) for spec in settings.editors or [default_editor]}
    if command.tiny_editor:  # random weights: 2 denoising steps are as good as 20
        editors["tiny-instruct-pix2pix"] = (tiny_editor_path(), {"num_inference_steps": 2, **editor_options})
    settings = replace(settings, agents=agents, editors=[spec for spec, _ in editors.values()],
                       max_steps=settings.max_steps or trained_step_budget(agents),
                       out=settings.out or str(Path("evals") / time.strftime("eval-%Y%m%d-%H%M%S")))
    return settings, options, editors, command


def main(args: argparse.Namespace) -> int:
    from mira_env.agents.commands.baseline import BASELINE_NOTE
    from mira_env.agents.commands.evaluate import evaluate
    from mira_env.agents.report import format_table
    from mira_env.redact import redact

    settings, options, editors, command = resolve(args)
    out, rows, columns, notes, report = evaluate(settings, options, editors, progress=command.progress,
                                                 restart=command.restart)
    baseline = json.loads((out / "metrics.json").read_text(encoding="utf-8")).get("baseline") or []
    print(format_table(rows + baseline, columns, intervals=True))
    if baseline:
        print(BASELINE_NOTE)
    for note in notes:
        print(f"note: {redact(note)}")
    print(f"metrics: {out / 'metrics.csv'} {out / 'metrics.json'}")
    print(f"report:  {report}")
    return 0
