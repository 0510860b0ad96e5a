"""``mira eval``: agents x editors x a task set -> a metrics table (CSV, JSON) and a side-by-side HTML report.

    mira eval                                         # oracle, one-shot, random on 8 shapes test tasks
    mira eval --tiny_vlm --tiny_reward_models         # + a tiny offline VLM agent, CLIP / LPIPS metrics
    mira eval --task_file magicbrush.jsonl --editors timbrooks/instruct-pix2pix identity \\
              --agents one-shot vlm:./ckpt --clip_pretrained openai --judge_model Qwen/Qwen2.5-VL-7B-Instruct

Metrics are reward terms (:mod:`rewards`) in a composite whose weights are all 0: every term is logged
per episode and none is optimised. On the shapes world the oracle score and success come from the
environment's own reward. Terms whose models are not configured are left out with a note (CLIP
needs weights: ``--clip_pretrained`` or ``--tiny_reward_models``; LPIPS needs its backbone; the judge
needs ``--judge_model``). ``--reward_config`` takes a YAML reward config for full control. The metrics are
built by :mod:`mira_env.agents.commands.metrics`, the tables by :mod:`mira_env.agents.commands.tables`; the
flags are generated from :class:`EvalSettings` and :class:`MetricOptions` (:mod:`mira_env.train.commands.eval`).

Output folder (``--out``, default ``evals/<timestamp>``): ``metrics.csv``, ``metrics.json``,
``report.html`` (agents side by side per task), ``tasks.json`` + ``tasks/``, and one run folder per
editor under ``editors/<editor>/`` (episodes.jsonl, images, and its own ``report.html``). Re-running
into the same folder resumes: finished episodes are reused.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from mira_env.episodes import EpisodeRecord
from mira_env.errors import ConfigError
from mira_env.rewards.composite import MergedReward
from mira_env.validate import check_choice, check_int

from mira_env.agents.commands import SHAPES_DEFAULT_TASKS, resolve_play_settings
from mira_env.agents.commands.baseline import BASELINE_NOTE, play_baseline
from mira_env.agents.commands.metrics import DEFAULT_METRICS, MetricOptions, build_metric_reward, shapes_reward
from mira_env.agents.commands.tables import (TABLE_COLUMNS, csv_row, interval_columns, metric_rows, table_columns,
                                             unscored_notes, write_tables)
from mira_env.agents.rollout import IMAGE_MODES
from mira_env.agents.specs import BASELINE_AGENT, DEFAULT_AGENTS, SPEC_FORMS, make_agents, resolve_agents, split_specs



def shapes_noise(spec: str) -> float | None:
    """``"shapes"`` -> 0.0, ``"shapes:0.2"`` -> 0.2; ``None`` for other editor specs."""
    if spec == "shapes":
        return 0.0
    if spec.startswith("shapes:"):
        try:
            return float(spec[len("shapes:"):])
        except ValueError:
            raise ConfigError(f"editor spec {spec!r}: write shapes:<noise in [0, 1]>, e.g. shapes:0.2") from None
    return None


@dataclass
class EvalSettings:
    """What ``mira eval`` compares (recorded, defaults resolved, in the folder's ``run.json``)."""

    agents: list[str] = field(default_factory=lambda: list(DEFAULT_AGENTS), metadata={
        "help": "Agent specs (space- or comma-separated; default " + " ".join(DEFAULT_AGENTS) + "). Forms: "
                + ", ".join(SPEC_FORMS)})
    editors: list[str] = field(default_factory=list, metadata={
        "help": "Editor specs; default: shapes (shapes world) / identity (task file). Shapes world: shapes, "
                "shapes:<noise>; any: identity, a diffusers preset, hub id or local path."})
    task_file: str | None = field(default=None, metadata={
        "help": "JSONL file (MagicBrush / CompBench shaped: source image, instruction, optional target), image "
                "folder or saved datasets folder; default: the shapes world."})
    tasks: int | None = field(default=None, metadata={
        "help": f"Number of tasks (shapes world: default {SHAPES_DEFAULT_TASKS}; task file: the first N, default all)."})
    split: str = field(default="test", metadata={"help": "Shapes-world split."})
    group_size: int = field(default=1, metadata={"help": "Episodes per task and agent (same editor seeds)."})
    groups_per_batch: int = field(default=4, metadata={"help": "Groups played side by side in one batch."})
    seed: int = field(default=0, metadata={"help": "Base seed of tasks, group seeds and random agents."})
    max_steps: int | None = field(default=None, metadata={
        "help": "Step budget T_max (default: the edit budget vlm:<folder> policies were trained with, from their "
                "mira_policy.json; else the env's)."})
    size: int = field(default=256, metadata={"help": "Observation size (pixels) for task files."})
    editor_options: dict = field(default_factory=dict, metadata={
        "help": "Keyword arguments for the editors, as JSON, e.g. '{\"device\": \"cuda\"}'."})
    vlm_options: dict = field(default_factory=dict, metadata={
        "help": "Keyword arguments for VLM agents, as JSON, e.g. '{\"max_new_tokens\": 32}'."})
    images: str = field(default="both", metadata={"help": "Images written per episode.", "choices": IMAGE_MODES})
    out: str | None = field(default=None, metadata={
        "help": "Output folder (default: evals/<timestamp> from the command, evals/eval from evaluate()); rerun with "
                "the same settings to resume."})
    baseline: bool = field(default=True, metadata={
        "help": "Add the no-op baseline row (an agent answering <STOP> at once) to the table."})
    report_templates: str | None = field(default=None, metadata={
        "help": "A folder of jinja2 report templates overriding the shipped ones (base.html, macros.html, run.html, "
                "comparison.html, report.css)."})

    def __post_init__(self) -> None:
        check_int("tasks", self.tasks, allow_none=True)
        check_int("max_steps", self.max_steps, allow_none=True)
        check_choice("images", self.images, IMAGE_MODES)
        self.agents = split_specs(self.agents)
        self.editors = [e.strip() for part in self.editors for e in str(part).split(",") if e.strip()]


def env_kwargs(settings: EvalSettings, editor_spec: str, metric_reward: Any,
               editor_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The :func:`mira_env.make` arguments of one editor's environment: ``editor_spec`` on the task set; rewards =
    (shapes oracle + oracle_progress +) metrics."""
    options = dict(settings.editor_options if editor_options is None else editor_options)
    noise = shapes_noise(editor_spec)
    common: dict[str, Any] = {"max_steps": settings.max_steps}
    if settings.task_file is None:
        count = SHAPES_DEFAULT_TASKS if settings.tasks is None else settings.tasks
        common.update(tasks="shapes", split=settings.split, num_tasks=count, seed=settings.seed,
                      reward=shapes_reward(metric_reward))
        if noise is not None:
            return {**common, "noise": noise}
        return {**common, "editor": editor_spec, "editor_options": options}
    if noise is not None:
        raise ConfigError(f"editor {editor_spec!r} edits shapes-world scenes only; with --task_file use identity, "
                          f"a diffusers preset, a hub id or a local path")
    options = {} if editor_spec == "identity" else options
    return {**common, "tasks": settings.task_file, "editor": editor_spec, "editor_options": options,
            "reward": metric_reward, "size": settings.size}


#: resolved settings that decide an eval folder's episodes: any change refuses the folder (or --restart clears it)
EVAL_KEYS = ("task_file", "task_file_fingerprint", "task_generator", "tasks", "split", "group_size", "seed",
             "max_steps", "size",
             "editor_options", "vlm_options", "metric_options")


def resolved_settings(settings: EvalSettings, options: MetricOptions) -> dict[str, Any]:
    """What ``run.json`` of an eval folder records: the settings with every default resolved, and the metric options."""
    from dataclasses import asdict

    return {**resolve_play_settings(settings), "metric_options": asdict(options)}


def default_editors(settings: EvalSettings) -> dict[str, tuple[str, dict]]:
    """``{label: (spec, options)}`` of ``settings.editors`` (default: ``shapes``, or ``identity`` for a task file)."""
    specs = settings.editors or ["shapes" if settings.task_file is None else "identity"]
    return {spec: (spec, dict(settings.editor_options)) for spec in specs}


def evaluate(settings: EvalSettings | None = None, options: MetricOptions | None = None,
             editors: Mapping[str, tuple[str, dict]] | None = None, progress: bool = True, restart: bool = False,
             *, agents: Mapping[str, Any] | None = None) -> tuple[Path, list[dict], list[str], list[str], Path]:
    """Run the comparison; returns (out, rows, columns, notes, report path). The Python API of ``mira eval``::

        from mira_env.agents.commands.evaluate import EvalSettings, evaluate
        out, rows, columns, notes, report = evaluate(EvalSettings(tasks=20, out="evals/mine"),
                                                     agents={"mine": MyAgent(), "oracle": "oracle"})

    ``agents`` maps record names to agent objects (anything with ``act``) or specs, and replaces
    ``settings.agents``; ``editors`` defaults to :func:`default_editors`. The folder records its resolved settings
    (:func:`resolved_settings`, ``run.json``) and is locked for the run (:class:`mira_env.runs.RunFolder`):
    rerunning with other settings is refused unless ``restart``. An agent object resumes the episodes its name
    left in the folder: give a changed agent a new name.
    """
    from dataclasses import replace

    from mira_env.runs import RunFolder

    settings = EvalSettings() if settings is None else settings
    if settings.out is None:
        settings = replace(settings, out="evals/eval")
    options = MetricOptions() if options is None else options
    built = None
    if agents is not None:
        built = resolve_agents(agents, seed=settings.seed, vlm_options=settings.vlm_options)
        settings = replace(settings, agents=list(built))
    editors = default_editors(settings) if editors is None else editors
    with RunFolder(settings.out, resolved_settings(settings, options), keys=EVAL_KEYS,
                   mergeable=("agents", "editors"), restart=restart):
        return _evaluate(settings, options, editors, progress, built)


def _evaluate(settings: EvalSettings, options: MetricOptions, editors: Mapping[str, tuple[str, dict]],
              progress: bool, built: Mapping[str, Any] | None = None
              ) -> tuple[Path, list[dict], list[str], list[str], Path]:
    from mira_env.agents.report import write_comparison_report, write_run_report, write_task_index
    from mira_env.agents.rollout import EpisodeStore, RolloutConfig, plan_groups, run_agents, slug
    from mira_env.factory import make_batched

    out = Path(settings.out)
    config = RolloutConfig(group_size=settings.group_size, groups_per_batch=settings.groups_per_batch,
                           seed=settings.seed, images=settings.images, progress=progress)
    metric_reward, notes = build_metric_reward(options)
    agents = dict(built) if built is not None else make_agents(settings.agents, seed=settings.seed,
                                                                vlm_options=settings.vlm_options)
    records_by_editor: dict[str, list[EpisodeRecord]] = {}
    baseline_by_editor: dict[str, list[dict]] = {}
    columns_for_report: dict[str, tuple[Path, list[dict]]] = {}
    for label, (spec, editor_options) in editors.items():
        venv = make_batched(config.num_envs, **env_kwargs(settings, spec, metric_reward, editor_options))
        count = len(venv.tasks) if settings.tasks is None else min(settings.tasks, len(venv.tasks))
        indices = list(range(count))
        tasks = [venv.tasks[i] for i in indices]
        write_task_index(out, tasks, size=(venv.config.height, venv.config.width))
        run_dir = out / "editors" / slug(label)
        write_task_index(run_dir, tasks, size=(venv.config.height, venv.config.width))
        jobs = plan_groups(venv.tasks, config, indices)
        with EpisodeStore(run_dir) as store:
            for name, agent in agents.items():
                try:
                    run_agents(venv, {name: agent}, jobs, config, store, desc=f"{name} x {label}")
                except Exception as exc:  # noqa: BLE001 - one agent's failure (a dead endpoint) is a note
                    from mira_env.redact import error_text

                    notes.append(f"{name} x {label} stopped: {error_text(exc)}")
            stored = store.records()
        task_ids = {task.id for task in tasks}
        records = [r for r in stored if r.agent in agents and r.task_id in task_ids]
        records_by_editor[label] = records
        from mira_env.agents.episode_stats import monitor_lines  # reward-hacking statistics, one line per agent

        for line in monitor_lines(records, run_dir):
            print(f"{label}: {line}", file=sys.stderr)
        if settings.baseline and BASELINE_AGENT not in agents:
            baseline_by_editor[label] = play_baseline(venv, indices, config, run_dir)
        write_run_report(run_dir, records, title=f"mira eval: {label}", template_dir=settings.report_templates)
        for name in agents:
            mine = [r for r in records if r.agent == name]
            if mine:
                column = name if len(editors) == 1 else f"{name} @ {label}"
                columns_for_report[column] = (run_dir, mine)
        venv.close()
    notes += unscored_notes(metric_reward, records_by_editor)
    rows = metric_rows(records_by_editor, list(agents))
    baseline = metric_rows(baseline_by_editor, [BASELINE_AGENT])
    columns = table_columns(rows)
    write_tables(out, rows, columns, notes, baseline)
    world = "shapes world" if settings.task_file is None else settings.task_file
    report_notes = [*notes, BASELINE_NOTE] if baseline else notes
    report = write_comparison_report(out / "report.html", columns_for_report, rows + baseline, columns,
                                     task_index_dir=out, title=f"mira eval on {world}", notes=report_notes,
                                     template_dir=settings.report_templates)
    return out, rows, columns, notes, report


__all__ = ["DEFAULT_METRICS", "EVAL_KEYS", "SHAPES_DEFAULT_TASKS", "TABLE_COLUMNS", "EvalSettings", "MergedReward",
           "MetricOptions", "build_metric_reward", "csv_row", "default_editors", "env_kwargs", "evaluate",
           "interval_columns", "metric_rows", "resolved_settings", "shapes_noise", "shapes_reward", "table_columns",
           "unscored_notes", "write_tables"]
