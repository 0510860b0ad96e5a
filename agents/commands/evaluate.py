"""``mira eval``: agents x editors x a task set -> a metrics table (CSV, JSON) and a side-by-side HTML report.

    mira eval                                         # oracle, one-shot, random on 8 shapes test tasks
    mira eval --tiny-vlm --tiny-reward-models         # + a tiny offline VLM agent, CLIP / LPIPS metrics
    mira eval --task-file magicbrush.jsonl --editors timbrooks/instruct-pix2pix,identity \\
              --agents one-shot,vlm:./ckpt --clip-pretrained openai --judge-model Qwen/Qwen2.5-VL-7B-Instruct

Metrics are reward terms (:mod:`rewards`) in a composite whose weights are all 0: every term is logged
per episode and none is optimised. On the shapes world the oracle score and success come from the
environment's own reward. Terms whose models are not configured are left out with a note (CLIP
needs weights: ``--clip-pretrained`` or ``--tiny-reward-models``; LPIPS needs its backbone; the judge
needs ``--judge-model``). ``--reward-config`` takes a YAML reward config for full control.

Output folder (``--out``, default ``evals/<timestamp>``): ``metrics.csv``, ``metrics.json``,
``report.html`` (agents side by side per task), ``tasks.json`` + ``tasks/``, and one run folder per
editor under ``editors/<editor>/`` (episodes.jsonl, images, and its own ``report.html``). Re-running
into the same folder resumes: finished episodes are reused.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from mira_env.errors import ConfigError, MiraError, describe, error_message

from mira_env.rewards.composite import MergedReward

from mira_env.agents.intervals import CONFIDENCE, SUFFIX

from mira_env.agents.commands.baseline import BASELINE_NOTE, play_baseline
from mira_env.agents.specs import (BASELINE_AGENT, DEFAULT_AGENTS, SPEC_FORMS, make_agents, parse_options,
                                   resolve_agents, split_specs, trained_step_budget)

SHAPES_DEFAULT_TASKS = 8
#: metric terms tried by default, in table order
DEFAULT_METRICS = ("judge_sc", "judge_pq", "judge_overall", "clip_t", "clip_i", "lpips", "l1")
TABLE_COLUMNS = ("agent", "editor", "episodes", "success_rate", "oracle", "oracle_progress", "judge_sc", "judge_pq",
                 "judge_overall", "clip_t", "clip_dir", "clip_i", "lpips", "l1", "l2", "mean_steps", "mean_edits", "editor_errors",
                 "invalid_actions")


# ---------------------------------------------------------------------- metrics
def shapes_reward(metrics: Any = None) -> Any:
    """The shapes world's reward for tables: the oracle score (the RL reward, with ``success``), plus
    ``oracle_progress`` (the share of the remaining gap closed) and ``metrics`` logged beside it."""
    from mira_env.rewards import build_reward
    from mira_env.shapes.oracle import ShapesOracleReward

    progress = build_reward({"terms": [{"name": "oracle_progress", "weight": 0.0}]})
    return MergedReward(ShapesOracleReward(), [progress, metrics])


@dataclass
class MetricOptions:
    """Which metric terms to compute and the models behind them."""

    metrics: list[str] | None = field(default=None, metadata={
        "help": "Metric terms; None = every default term whose model is configured."})
    reward_config: str | None = field(default=None, metadata={"help": "A YAML reward config (overrides the rest)."})
    device: str = field(default="auto", metadata={"help": "Device of the metric models."})
    clip_model: str = field(default="ViT-B-32", metadata={"help": "open_clip model name."})
    clip_pretrained: str | None = field(default=None, metadata={
        "help": "open_clip pretrained tag or checkpoint path; CLIP metrics are off without it."})
    lpips_net: str = field(default="alex", metadata={"help": "LPIPS backbone."})
    lpips_torch_home: str | None = field(default=None, metadata={
        "help": "TORCH_HOME with the LPIPS backbone checkpoint; LPIPS is off without it (or --tiny-reward-models)."})
    judge_model: str | None = field(default=None, metadata={"help": "Judge VLM: hub id / path, or endpoint model."})
    judge_base_url: str | None = field(default=None, metadata={"help": "OpenAI-compatible judge endpoint."})
    tiny: bool = field(default=False, metadata={"help": "Tiny random offline CLIP / LPIPS (plumbing only)."})
    tiny_judge: bool = field(default=False, metadata={"help": "A tiny random offline judge VLM (plumbing only)."})


def build_metric_reward(metrics: Sequence[str] | MetricOptions | None = None) -> tuple[Any, list[str]]:
    """A composite of the metric terms with weight 0 each, and notes on the terms left out.

    Returns ``(None, notes)`` when no term is available.
    """
    from mira_env.rewards import TERMS, build_reward

    options = metrics if isinstance(metrics, MetricOptions) else MetricOptions(
        metrics=None if metrics is None else list(metrics))
    if options.reward_config:
        return build_reward(options.reward_config), [f"metrics from {options.reward_config}"]
    explicit = options.metrics is not None
    wanted = list(options.metrics) if explicit else list(DEFAULT_METRICS)
    unknown = [m for m in wanted if m not in TERMS]
    if unknown:
        raise ConfigError(f"unknown metric(s) {unknown}; known terms: {sorted(TERMS)}")
    config: dict[str, Any] = {"device": options.device, "missing": "skip"}
    notes: list[str] = []
    cache = None
    if options.tiny or options.tiny_judge:
        from mira_env.tiny.vlm import default_path

        cache = default_path().parent / "eval_reward_models"
    available = []
    for name in wanted:
        if name.startswith("clip"):
            if options.tiny:
                from mira_env.tiny.reward_models import build_tiny_clip

                model_name, checkpoint = build_tiny_clip(cache / "clip")
                config["clip"] = {"model_name": model_name, "pretrained": checkpoint}
                notes.append(f"{name}: tiny random CLIP (plumbing only, not a real score)")
            elif options.clip_pretrained:
                config["clip"] = {"model_name": options.clip_model, "pretrained": options.clip_pretrained}
            else:
                notes.append(f"{name} omitted: no CLIP weights (give --clip-pretrained <tag or checkpoint>, "
                             f"or --tiny-reward-models for a plumbing run)")
                continue
        elif name == "lpips":
            if options.tiny:
                from mira_env.tiny.reward_models import build_tiny_lpips_home

                config["lpips"] = {"net": "squeeze", "torch_home": str(build_tiny_lpips_home(cache / "lpips"))}
                notes.append("lpips: tiny LPIPS backbone (plumbing only, not a real score)")
            elif options.lpips_torch_home:
                config["lpips"] = {"net": options.lpips_net, "torch_home": options.lpips_torch_home}
            else:
                notes.append("lpips omitted: no LPIPS backbone (give --lpips-torch-home <TORCH_HOME with the "
                             "torchvision checkpoint>, or --tiny-reward-models)")
                continue
        elif name.startswith("judge_"):
            if options.tiny_judge:
                from transformers import AutoProcessor

                from mira_env.tiny.vlm import build_tiny_vlm, suppress_token_ids

                path = str(build_tiny_vlm("qwen2_5_vl", cache / "judge"))
                config["judge"] = {"backend": "transformers", "model": path, "max_new_tokens": 12, "generate_kwargs": {
                    "suppress_tokens": suppress_token_ids(AutoProcessor.from_pretrained(path))}}
                notes.append(f"{name}: tiny random judge VLM (plumbing only, mostly unscorable)")
            elif options.judge_model and options.judge_base_url:
                config["judge"] = {"backend": "openai", "model": options.judge_model,
                                   "base_url": options.judge_base_url}
            elif options.judge_model:
                config["judge"] = {"backend": "transformers", "model": options.judge_model}
            else:
                notes.append(f"{name} omitted: no judge (give --judge-model, with --judge-base-url for an endpoint)")
                continue
        available.append(name)
    if not available:
        return None, notes
    config["terms"] = [{"name": name, "weight": 0.0} for name in available]
    return build_reward(config), notes


# ---------------------------------------------------------------------- task files
#: benchmark field names (MagicBrush, CompBench, ...) -> the names the task loaders read
# ---------------------------------------------------------------------- environments
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
    """What ``mira eval`` compares."""

    agents: list[str] = field(default_factory=lambda: list(DEFAULT_AGENTS), metadata={"help": "Agent specs."})
    editors: list[str] = field(default_factory=list, metadata={
        "help": "Editor specs (shapes world: 'shapes', 'shapes:<noise>' or any editor; task file: any editor)."})
    task_file: str | None = field(default=None, metadata={"help": "JSONL / folder / datasets task file."})
    tasks: int | None = field(default=None, metadata={"help": "Number of tasks (first N)."})
    split: str = field(default="test", metadata={"help": "Shapes-world split."})
    group_size: int = field(default=1, metadata={"help": "Episodes per task and agent (same seeds)."})
    groups_per_batch: int = field(default=4, metadata={"help": "Groups per batch."})
    seed: int = field(default=0, metadata={"help": "Base seed."})
    max_steps: int | None = field(default=None, metadata={"help": "Step budget."})
    size: int = field(default=256, metadata={"help": "Observation size for task files."})
    editor_options: dict = field(default_factory=dict, metadata={"help": "Keyword arguments for diffusers editors."})
    vlm_options: dict = field(default_factory=dict, metadata={"help": "Keyword arguments for VLM agents."})
    images: str = field(default="both", metadata={"help": "Images per episode."})
    out: str = field(default="evals/eval", metadata={"help": "Output folder."})
    baseline: bool = field(default=True, metadata={
        "help": "Add the no-op baseline row (an agent answering <STOP> at once) to the table."})
    report_templates: str | None = field(default=None, metadata={
        "help": "A folder of report templates overriding the shipped ones (base.html, macros.html, run.html, "
                "comparison.html, report.css)."})


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
        raise ConfigError(f"editor {editor_spec!r} edits shapes-world scenes only; with --task-file use identity, "
                          f"a diffusers preset, a hub id or a local path")
    options = {} if editor_spec == "identity" else options
    return {**common, "tasks": settings.task_file, "editor": editor_spec, "editor_options": options,
            "reward": metric_reward, "size": settings.size}


# ---------------------------------------------------------------------- the table
def metric_rows(records_by_editor: Mapping[str, Sequence[Mapping[str, Any]]], agents: Sequence[str]) -> list[dict]:
    """One row per (agent, editor): success, mean of every metric component, steps, counts."""
    from mira_env.agents.report import summarize

    rows = []
    for editor, records in records_by_editor.items():
        summaries = {row["name"]: row for row in summarize(records)}
        for agent in agents:
            if agent not in summaries:
                continue
            summary = summaries[agent]
            row: dict[str, Any] = {"agent": agent, "editor": editor}
            for key, value in summary.items():
                if key == "name":
                    continue
                base, suffix = (key[: -len(SUFFIX)], SUFFIX) if key.endswith(SUFFIX) else (key, "")
                if base.startswith("mean_") and base not in ("mean_steps", "mean_edits", "mean_reward", "mean_return"):
                    base = base[len("mean_"):]
                row[base + suffix] = value
            rows.append(row)
    return rows


def unscored_notes(metric_reward: Any, records_by_editor: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    """A note for every configured metric that no episode could be scored with (with the first reason)."""
    names = list(getattr(metric_reward, "names", []) or [])
    notes = []
    for name in names:
        for editor, records in records_by_editor.items():
            if not records or any((r.get("final_components") or {}).get(name) is not None for r in records):
                continue
            reasons = [(s.get("reward_errors") or {}).get(name) for r in records for s in r.get("steps", [])]
            reason = next((r for r in reasons if r), "no reason given")
            notes.append(f"{name} on {editor}: no episode could be scored ({str(reason)[:200]})")
    return notes


def table_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The table's columns: known ones in order, then other metric components; empty ones dropped."""
    known = [c for c in TABLE_COLUMNS if c in ("agent", "editor") or any(row.get(c) is not None for row in rows)]
    skip = set(TABLE_COLUMNS) | {"reward", "mean_reward", "mean_return", "unscored"}
    extra = sorted({k for row in rows for k in row if k not in skip and row.get(k) is not None
                    and not k.endswith(SUFFIX)})
    return known + extra


def interval_columns(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> list[str]:
    """``<column>_ci95_low`` / ``_high`` for every column of ``columns`` that has a 95% interval in some row (the
    CSV's interval columns, after the values)."""
    return [f"{column}{SUFFIX}_{end}" for column in columns
            if any(row.get(column + SUFFIX) is not None for row in rows) for end in ("low", "high")]


def csv_row(row: Mapping[str, Any], columns: Sequence[str]) -> dict[str, Any]:
    """``row`` as a CSV line holds it: its values, and each interval split into its ``_low`` / ``_high`` columns."""
    cells = {}
    for column in columns:
        if column.endswith(f"{SUFFIX}_low") or column.endswith(f"{SUFFIX}_high"):
            base, _, end = column.rpartition("_")
            interval = row.get(base)
            value = None if interval is None else interval[0 if end == "low" else 1]
        else:
            value = row.get(column)
        cells[column] = "" if value is None else value
    return cells


def write_tables(out: Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str], notes: Sequence[str],
                 baseline: Sequence[Mapping[str, Any]] = ()) -> None:
    """``metrics.csv`` (values, then each interval's low / high columns) and ``metrics.json`` (rows with their
    ``_ci95`` intervals, the no-op ``baseline`` rows, the notes)."""
    import io

    from mira_env.agents.rollout import to_jsonable
    from mira_env.runs import atomic_write_text, write_json

    header = list(columns) + interval_columns(rows, columns)
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=header, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(csv_row(row, header))
    atomic_write_text(out / "metrics.csv", buffer.getvalue())  # redacted, atomic
    data = {"columns": header, "rows": list(rows), "notes": list(notes), "baseline": list(baseline),
            "confidence": CONFIDENCE}
    write_json(out / "metrics.json", to_jsonable(data))


# ---------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--agents", action="append", default=None, metavar="SPECS",
                        help="comma-separated agent specs (repeatable); default: " + ",".join(DEFAULT_AGENTS)
                        + ". Forms: " + ", ".join(SPEC_FORMS))
    parser.add_argument("--editors", action="append", default=None, metavar="SPECS",
                        help="comma-separated editor specs; default: shapes (shapes world) / identity (task file). "
                             "Shapes world: shapes, shapes:<noise>; any: identity, a diffusers preset, hub id, path")
    parser.add_argument("--task-file", default=None, help="JSONL file (MagicBrush / CompBench shaped: source image, "
                        "instruction, optional target), image folder or saved datasets folder; default: shapes world")
    parser.add_argument("--tasks", type=int, default=None,
                        help=f"number of tasks (shapes default {SHAPES_DEFAULT_TASKS}; task file: first N, default all)")
    parser.add_argument("--split", default="test", help="shapes-world split (default test)")
    parser.add_argument("--group-size", type=int, default=1, help="episodes per task and agent (default 1)")
    parser.add_argument("--groups-per-batch", type=int, default=4, help="groups per batch (default 4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=None,
                        help="step budget T_max (default: the edit budget vlm:<folder> policies were trained with, "
                             "from their mira_policy.json; else the env's)")
    parser.add_argument("--size", type=int, default=256, help="observation size for task files (default 256)")
    parser.add_argument("--metrics", default=None,
                        help="comma-separated metric terms (default: " + ",".join(DEFAULT_METRICS)
                        + ", each when its model is configured)")
    parser.add_argument("--reward-config", default=None, help="YAML reward config whose components are logged")
    parser.add_argument("--device", default="auto", help="device of the metric models")
    parser.add_argument("--clip-model", default="ViT-B-32")
    parser.add_argument("--clip-pretrained", default=None, help="open_clip pretrained tag / checkpoint (enables CLIP)")
    parser.add_argument("--lpips-net", default="alex", choices=("alex", "vgg", "squeeze"))
    parser.add_argument("--lpips-torch-home", default=None, help="TORCH_HOME with the LPIPS backbone (enables LPIPS)")
    parser.add_argument("--judge-model", default=None, help="judge VLM hub id / path, or endpoint model name")
    parser.add_argument("--judge-base-url", default=None, help="OpenAI-compatible judge endpoint")
    parser.add_argument("--tiny-vlm", action="store_true", help="add a tiny random offline VLM agent (vlm:tiny)")
    parser.add_argument("--tiny-editor", action="store_true",
                        help="add a tiny random offline InstructPix2Pix editor (plumbing only)")
    parser.add_argument("--tiny-reward-models", action="store_true", help="tiny random offline CLIP and LPIPS")
    parser.add_argument("--tiny-judge", action="store_true", help="a tiny random offline judge VLM")
    parser.add_argument("--editor-option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--vlm-option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--images", default="both", choices=["steps", "strip", "both", "none"])
    parser.add_argument("--out", default=None, help="output folder (default evals/<timestamp>); rerun with the same "
                        "settings to resume it")
    parser.add_argument("--restart", action="store_true",
                        help="clear the output folder's results when its recorded settings differ, and start over")
    parser.add_argument("--no-baseline", action="store_true",
                        help="leave out the no-op baseline row (an agent answering <STOP> at once)")
    parser.add_argument("--report-templates", default=None, metavar="DIR",
                        help="folder of jinja2 templates overriding the report's (base.html, macros.html, run.html, "
                             "comparison.html, report.css)")
    parser.add_argument("--no-progress", action="store_true")


def tiny_editor_path() -> str:
    """Build (once) the tiny InstructPix2Pix pipeline and return its folder."""
    from mira_env.tiny.pipelines import build_tiny_pipeline
    from mira_env.tiny.vlm import default_path

    path = default_path().parent / "instruct-pix2pix-seed0"
    if not (path / "model_index.json").is_file():
        build_tiny_pipeline("instruct-pix2pix", path, seed=0)
    return str(path)


def settings_from_args(args: argparse.Namespace) -> tuple[EvalSettings, MetricOptions, dict[str, tuple[str, dict]]]:
    """Settings, metric options and ``{editor label: (editor spec, editor options)}``."""
    for flag, value in (("--tasks", args.tasks), ("--max-steps", args.max_steps)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} {describe(value)} must be a positive int")
    agents = split_specs(args.agents) if args.agents else list(DEFAULT_AGENTS)
    if args.tiny_vlm and "vlm:tiny" not in agents:
        agents.append("vlm:tiny")
    default_editor = "shapes" if args.task_file is None else "identity"
    editor_options = parse_options(args.editor_option, "editor")
    editors = {spec: (spec, editor_options) for spec in (split_specs(args.editors) if args.editors else [default_editor])}
    if args.tiny_editor:  # random weights: 2 denoising steps are as good as 20
        editors["tiny-instruct-pix2pix"] = (tiny_editor_path(), {"num_inference_steps": 2, **editor_options})
    settings = EvalSettings(agents=agents, editors=[spec for spec, _ in editors.values()], task_file=args.task_file, tasks=args.tasks,
                            split=args.split, group_size=args.group_size, groups_per_batch=args.groups_per_batch,
                            seed=args.seed, max_steps=args.max_steps or trained_step_budget(agents), size=args.size,
                            editor_options=editor_options,
                            vlm_options=parse_options(args.vlm_option, "vlm"), images=args.images,
                            baseline=not getattr(args, "no_baseline", False),
                            report_templates=getattr(args, "report_templates", None),
                            out=args.out or str(Path("evals") / time.strftime("eval-%Y%m%d-%H%M%S")))
    metrics = None if args.metrics is None else [m.strip() for m in args.metrics.split(",") if m.strip()]
    options = MetricOptions(metrics=metrics, reward_config=args.reward_config, device=args.device,
                            clip_model=args.clip_model, clip_pretrained=args.clip_pretrained, lpips_net=args.lpips_net,
                            lpips_torch_home=args.lpips_torch_home, judge_model=args.judge_model,
                            judge_base_url=args.judge_base_url, tiny=args.tiny_reward_models,
                            tiny_judge=args.tiny_judge)
    return settings, options, editors


#: resolved settings that decide an eval folder's episodes: any change refuses the folder (or --restart clears it)
EVAL_KEYS = ("task_file", "task_file_fingerprint", "task_generator", "tasks", "split", "group_size", "seed",
             "max_steps", "size",
             "editor_options", "vlm_options", "metric_options")


def resolved_settings(settings: EvalSettings, options: MetricOptions) -> dict[str, Any]:
    """What ``run.json`` of an eval folder records: the settings with every default resolved."""
    from dataclasses import asdict

    from mira_env.config import EditEnvConfig
    from mira_env.runs import fingerprint
    from mira_env.shapes.env import DEFAULT_MAX_STEPS
    from mira_env.shapes.generator import GENERATOR_VERSION

    shapes = settings.task_file is None
    data = asdict(settings)
    data["max_steps"] = settings.max_steps or (DEFAULT_MAX_STEPS if shapes else EditEnvConfig().max_steps)
    data["tasks"] = settings.tasks or (SHAPES_DEFAULT_TASKS if shapes else "all")
    data["task_file_fingerprint"] = fingerprint(settings.task_file)
    data["task_generator"] = GENERATOR_VERSION if shapes else None
    data["metric_options"] = asdict(options)
    return data


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
    records_by_editor: dict[str, list[dict]] = {}
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
        records = [r for r in stored if r["agent"] in agents and r["task_id"] in task_ids]
        records_by_editor[label] = records
        from mira_env.agents.episode_stats import monitor_lines  # reward-hacking statistics, one line per agent

        for line in monitor_lines(records, run_dir):
            print(f"{label}: {line}", file=sys.stderr)
        if settings.baseline and BASELINE_AGENT not in agents:
            baseline_by_editor[label] = play_baseline(venv, indices, config, run_dir)
        write_run_report(run_dir, records, title=f"mira eval: {label}", template_dir=settings.report_templates)
        for name in agents:
            mine = [r for r in records if r["agent"] == name]
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


def main(args: argparse.Namespace) -> int:
    from mira_env.agents.report import format_table

    try:
        settings, options, editors = settings_from_args(args)
        out, rows, columns, notes, report = evaluate(settings, options, editors, progress=not args.no_progress,
                                                     restart=getattr(args, "restart", False))
    except MiraError as exc:
        print(f"mira eval: error: {error_message(exc)}", file=sys.stderr)
        return 2
    import json

    baseline = json.loads((out / "metrics.json").read_text(encoding="utf-8")).get("baseline") or []
    print(format_table(rows + baseline, columns, intervals=True))
    from mira_env.redact import redact

    if baseline:
        print(BASELINE_NOTE)
    for note in notes:
        print(f"note: {redact(note)}")
    print(f"metrics: {out / 'metrics.csv'} {out / 'metrics.json'}")
    print(f"report:  {report}")
    return 0
