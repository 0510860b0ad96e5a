"""``mira run``: play episodes for a set of agents and write a run folder with an HTML report.

By default it plays the shapes world (exact ground truth, a scripted oracle to compare against)::

    mira run                                     # oracle, one-shot, random on 4 test tasks, G=2
    mira run --agents oracle,vlm:Qwen/Qwen2.5-VL-3B-Instruct --tasks 50 --noise 0.2 --group-size 8
    mira run --task-file my_tasks.jsonl --editor timbrooks/instruct-pix2pix --agents one-shot,vlm:./ckpt

The run folder (``--out``, default ``runs/<name or timestamp>``) holds ``episodes.jsonl`` (one line
per episode, every step), per-step PNGs, one strip PNG per episode, ``tasks.json`` (sources and
targets), ``summary.json`` and ``report.html`` (self-contained: images embedded). Running the same
command with the same ``--out`` resumes an interrupted run: finished episodes are kept, the rest are
played. ``run.json`` records the resolved settings (defaults filled in, the task file's fingerprint):
a rerun with other settings, or into a folder with episodes but no ``run.json``, is refused unless
``--restart`` (which clears the folder's results). A second process on the same folder is refused.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mira_env.errors import ConfigError, MiraError, describe, error_message

from mira_env.agents.commands.baseline import BASELINE_DIR, BASELINE_NOTE, play_baseline
from mira_env.agents.specs import (BASELINE_AGENT, DEFAULT_AGENTS, SPEC_FORMS, make_agents, parse_options, split_specs,
                                    trained_step_budget)

RUN_FILE = "run.json"
SUMMARY_FILE = "summary.json"
SHAPES_DEFAULT_TASKS = 4
#: settings that must match to resume a run folder (agents may be added)
RESUME_KEYS = ("task_file", "task_file_fingerprint", "task_generator", "editor", "editor_options", "split",
               "noise", "tasks", "seed", "group_size", "groups_per_task", "max_steps", "size", "metrics", "vlm_options")
SUMMARY_COLUMNS = ("name", "episodes", "success_rate", "mean_reward", "mean_oracle", "mean_oracle_progress",
                   "mean_steps", "mean_edits")


@dataclass
class RunSettings:
    """Everything ``mira run`` was asked to do (saved to ``run.json``)."""

    agents: list[str] = field(default_factory=lambda: list(DEFAULT_AGENTS), metadata={
        "help": "Agent specs: " + ", ".join(SPEC_FORMS)})
    tasks: int | None = field(default=None, metadata={
        "help": f"Number of tasks (shapes world: generated, default {SHAPES_DEFAULT_TASKS}; task file: the first N)."})
    split: str = field(default="test", metadata={"help": "Shapes-world split to generate tasks from."})
    noise: float = field(default=0.0, metadata={"help": "Shapes-world editor noise (0 = a perfect editor)."})
    group_size: int = field(default=2, metadata={"help": "G: episodes per task with the same editor seeds."})
    groups_per_batch: int = field(default=2, metadata={"help": "Groups played side by side in one batch."})
    groups_per_task: int = field(default=1, metadata={"help": "Groups per task (each with its own seed)."})
    seed: int = field(default=0, metadata={"help": "Base seed of task generation, group seeds and random agents."})
    max_steps: int | None = field(default=None, metadata={"help": "Step budget T_max (default: the env's)."})
    task_file: str | None = field(default=None, metadata={
        "help": "A .jsonl task file, an image folder or a saved datasets folder (instead of the shapes world)."})
    editor: str | None = field(default=None, metadata={
        "help": "Editor spec: 'shapes', 'identity', a diffusers preset, hub id or local path."})
    editor_options: dict = field(default_factory=dict, metadata={"help": "Keyword arguments for the editor."})
    metrics: list[str] = field(default_factory=list, metadata={
        "help": "Reward terms logged per episode for task files (see mira eval --metrics)."})
    size: int = field(default=256, metadata={"help": "Observation size (pixels) for task-file environments."})
    images: str = field(default="both", metadata={"help": "Per-episode images: steps, strip, both or none."})
    vlm_options: dict = field(default_factory=dict, metadata={"help": "Keyword arguments for VLM agents."})
    out: str | None = field(default=None, metadata={"help": "Run folder."})
    baseline: bool = field(default=True, metadata={
        "help": "Add the no-op baseline row (an agent answering <STOP> at once) to the table."})
    report_templates: str | None = field(default=None, metadata={
        "help": "A folder of report templates overriding the shipped ones (base.html, macros.html, run.html, "
                "comparison.html, report.css)."})

    def resolved(self) -> dict[str, Any]:
        """The settings as ``run.json`` records them: every default resolved (tasks, max_steps), plus the
        task file's content fingerprint."""
        from mira_env.config import EditEnvConfig
        from mira_env.runs import fingerprint
        from mira_env.shapes.env import DEFAULT_MAX_STEPS
        from mira_env.shapes.generator import GENERATOR_VERSION

        shapes = self.task_file is None
        data = asdict(self)
        data["tasks"] = self.tasks or (SHAPES_DEFAULT_TASKS if shapes else "all")
        data["max_steps"] = self.max_steps or (DEFAULT_MAX_STEPS if shapes else EditEnvConfig().max_steps)
        data["task_file_fingerprint"] = fingerprint(self.task_file)
        data["task_generator"] = GENERATOR_VERSION if shapes else None
        return data

    def resume_view(self) -> dict[str, Any]:
        data = self.resolved()
        return {key: data[key] for key in RESUME_KEYS}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--agents", action="append", default=None, metavar="SPECS",
                        help="comma-separated agent specs (repeatable); default: " + ",".join(DEFAULT_AGENTS)
                        + ". Forms: " + ", ".join(SPEC_FORMS))
    parser.add_argument("--tiny-vlm", action="store_true",
                        help="also play a tiny random VLM built offline (agent 'vlm:tiny'; plumbing only)")
    parser.add_argument("--tasks", type=int, default=None,
                        help=f"number of tasks (shapes default {SHAPES_DEFAULT_TASKS}; task file: first N, default all)")
    parser.add_argument("--split", default="test", help="shapes-world split (default: test)")
    parser.add_argument("--noise", type=float, default=0.0, help="shapes-world editor noise in [0, 1] (default 0)")
    parser.add_argument("--group-size", type=int, default=2, help="episodes per group, G (default 2)")
    parser.add_argument("--groups-per-batch", type=int, default=2, help="groups played side by side (default 2)")
    parser.add_argument("--groups-per-task", type=int, default=1, help="groups per task (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.add_argument("--max-steps", type=int, default=None, help="step budget T_max (default: the edit budget vlm:<folder> "
                        "policies were trained with, from their mira_policy.json; else the env's)")
    parser.add_argument("--task-file", default=None,
                        help="tasks from a .jsonl file / image folder / saved datasets folder instead of the shapes world")
    parser.add_argument("--editor", default=None,
                        help="editor spec for --task-file: identity, a diffusers preset, hub id or local path")
    parser.add_argument("--editor-option", action="append", default=[], metavar="KEY=VALUE",
                        help="editor keyword argument (repeatable), e.g. device=cuda")
    parser.add_argument("--metrics", default="", help="comma-separated reward terms logged for --task-file runs")
    parser.add_argument("--size", type=int, default=256, help="observation size for --task-file runs (default 256)")
    parser.add_argument("--images", default="both", choices=["steps", "strip", "both", "none"],
                        help="images written per episode (default both)")
    parser.add_argument("--vlm-option", action="append", default=[], metavar="KEY=VALUE",
                        help="VLMAgent keyword argument (repeatable), e.g. device=cuda, max_new_tokens=32")
    parser.add_argument("--out", default=None, help="run folder (default runs/<--name or timestamp>); reused to resume")
    parser.add_argument("--name", default=None, help="run name: the folder runs/<name>")
    parser.add_argument("--restart", action="store_true",
                        help="clear the run folder's results when its recorded settings differ, and start over")
    parser.add_argument("--no-baseline", action="store_true",
                        help="leave out the no-op baseline row (an agent answering <STOP> at once)")
    parser.add_argument("--report-templates", default=None, metavar="DIR",
                        help="folder of jinja2 templates overriding the report's (base.html, macros.html, run.html, "
                             "comparison.html, report.css)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def settings_from_args(args: argparse.Namespace) -> RunSettings:
    for flag, value in (("--tasks", args.tasks), ("--max-steps", args.max_steps)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} {describe(value)} must be a positive int")
    agents = split_specs(args.agents) if args.agents else list(DEFAULT_AGENTS)
    if getattr(args, "tiny_vlm", False) and "vlm:tiny" not in agents:
        agents.append("vlm:tiny")
    out = args.out or str(Path("runs") / (args.name or time.strftime("run-%Y%m%d-%H%M%S")))
    metrics = [m.strip() for m in (args.metrics or "").split(",") if m.strip()]
    return RunSettings(agents=agents, tasks=args.tasks, split=args.split, noise=args.noise,
                       group_size=args.group_size, groups_per_batch=args.groups_per_batch,
                       groups_per_task=args.groups_per_task, seed=args.seed, max_steps=args.max_steps or trained_step_budget(agents),
                       task_file=args.task_file, editor=args.editor,
                       editor_options=parse_options(args.editor_option, "editor"), metrics=metrics, size=args.size,
                       images=args.images, vlm_options=parse_options(args.vlm_option, "vlm"), out=out,
                       baseline=not getattr(args, "no_baseline", False),
                       report_templates=getattr(args, "report_templates", None))


def env_kwargs(settings: RunSettings) -> dict[str, Any]:
    """The :func:`mira_env.make` arguments of the run: the shapes world (oracle + oracle_progress), or task file +
    editor (+ metrics)."""
    from mira_env.agents.commands.evaluate import build_metric_reward, shapes_reward

    if settings.task_file is None:
        if settings.editor not in (None, "shapes"):
            raise ConfigError(f"--editor {settings.editor!r} needs --task-file; the shapes world uses its own editor "
                              f"(set its noise with --noise)")
        if settings.metrics:
            raise ConfigError("--metrics applies to --task-file runs; shapes-world runs log the oracle reward "
                              "(use mira eval for more metrics)")
        tasks = SHAPES_DEFAULT_TASKS if settings.tasks is None else settings.tasks
        return {"tasks": "shapes", "split": settings.split, "num_tasks": tasks, "noise": settings.noise,
                "seed": settings.seed, "max_steps": settings.max_steps, "reward": shapes_reward()}
    if not settings.editor:
        raise ConfigError("--task-file needs --editor (identity, a diffusers preset, a hub id or a local path)")
    reward = build_metric_reward(settings.metrics)[0] if settings.metrics else None
    return {"tasks": settings.task_file, "editor": settings.editor, "editor_options": settings.editor_options,
            "reward": reward, "size": settings.size, "max_steps": settings.max_steps}


def task_indices(settings: RunSettings, num_tasks: int) -> list[int]:
    count = num_tasks if settings.tasks is None else settings.tasks
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"--tasks {describe(count)} must be a positive int")
    return list(range(min(count, num_tasks)))


def play(settings: RunSettings, progress: bool = True, restart: bool = False, *,
         agents: Any = None) -> tuple[Path, list[dict], Path]:
    """Do the run; returns (run folder, records of the selected agents and tasks, report path).

    ``agents`` (the Python API) maps record names to agent objects or specs and replaces ``settings.agents``.

    The folder is held for the run (:class:`mira_env.runs.RunFolder`: lock, resolved settings in ``run.json``,
    agents may be added); other settings are refused unless ``restart``. A failed first run leaves no folder.
    The summary (``summary.json``) is written before the folder is released.
    """
    from mira_env.agents.rollout import RolloutConfig
    from mira_env.runs import RunFolder

    config = RolloutConfig(group_size=settings.group_size, groups_per_batch=settings.groups_per_batch,
                           groups_per_task=settings.groups_per_task, seed=settings.seed, images=settings.images,
                           progress=progress)
    built = None
    if agents is not None:
        from dataclasses import replace

        from mira_env.agents.specs import resolve_agents

        built = resolve_agents(agents, seed=settings.seed, vlm_options=settings.vlm_options)
        settings = replace(settings, agents=list(built))
    with RunFolder(settings.out, settings.resolved(), keys=RESUME_KEYS, mergeable=("agents",), restart=restart):
        return _play(settings, config, built)


def _play(settings: RunSettings, config: Any, built: Any = None) -> tuple[Path, list[dict], Path]:
    from mira_env.agents.report import summarize, write_run_report, write_task_index
    from mira_env.agents.rollout import EpisodeStore, plan_groups, run_agents
    from mira_env.runs import write_json
    from mira_env.factory import make_batched

    out = Path(settings.out)
    venv = make_batched(config.num_envs, **env_kwargs(settings))
    indices = task_indices(settings, len(venv.tasks))
    tasks = [venv.tasks[i] for i in indices]
    agents = dict(built) if built is not None else make_agents(settings.agents, seed=settings.seed,
                                                                vlm_options=settings.vlm_options)
    write_task_index(out, tasks, size=(venv.config.height, venv.config.width))
    with EpisodeStore(out) as store:
        run_agents(venv, agents, plan_groups(venv.tasks, config, indices), config, store, desc="mira run")
        records_all = store.records()
    task_ids = {task.id for task in tasks}
    records = [r for r in records_all if r["agent"] in agents and r["task_id"] in task_ids]
    world = "shapes world" if settings.task_file is None else settings.task_file
    report = write_run_report(out, records, title=f"mira run: {', '.join(agents)} on {world}",
                              notes=[f"{len(tasks)} tasks x {config.groups_per_task} group(s) x G={config.group_size}; "
                                     f"seed {settings.seed}; folder {out}"], template_dir=settings.report_templates)
    write_json(out / SUMMARY_FILE, summarize(records))
    if settings.baseline and BASELINE_AGENT not in agents:
        baseline = play_baseline(venv, indices, config, out)
        write_json(out / BASELINE_DIR / SUMMARY_FILE, summarize(baseline))
    venv.close()
    return out, records, report


def main(args: argparse.Namespace) -> int:
    from mira_env.agents.report import format_table, summarize

    try:
        settings = settings_from_args(args)
        out, records, report = play(settings, progress=not args.no_progress, restart=getattr(args, "restart", False))
    except MiraError as exc:
        print(f"mira run: error: {error_message(exc)}", file=sys.stderr)
        return 2
    import json

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
