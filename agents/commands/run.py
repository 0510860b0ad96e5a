"""``mira run``: play episodes for a set of agents and write a run folder with an HTML report.

By default it plays the shapes world (exact ground truth, a scripted oracle to compare against)::

    mira run                                     # oracle, one-shot, random on 8 test tasks, G=2
    mira run --agents oracle vlm:Qwen/Qwen2.5-VL-3B-Instruct --tasks 50 --noise 0.2 --group_size 8
    mira run --task_file my_tasks.jsonl --editor timbrooks/instruct-pix2pix --agents one-shot vlm:./ckpt

The run folder (``--out``, default ``runs/<name or timestamp>``) holds ``episodes.jsonl`` (one line
per episode, every step), per-step PNGs, one strip PNG per episode, ``tasks.json`` (sources and
targets), ``summary.json`` and ``report.html`` (self-contained: images embedded). Running the same
command with the same ``--out`` resumes an interrupted run: finished episodes are kept, the rest are
played. ``run.json`` records the resolved settings (defaults filled in, the task file's fingerprint):
a rerun with other settings, or into a folder with episodes but no ``run.json``, is refused unless
``--restart`` (which clears the folder's results). A second process on the same folder is refused.
The flags are generated from :class:`RunSettings` (:mod:`mira_env.train.commands.run`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mira_env.errors import ConfigError
from mira_env.validate import check_choice, check_int

from mira_env.agents.commands import SHAPES_DEFAULT_TASKS, resolve_play_settings
from mira_env.agents.commands.baseline import BASELINE_DIR, BASELINE_NOTE, play_baseline
from mira_env.agents.rollout import IMAGE_MODES
from mira_env.agents.specs import BASELINE_AGENT, DEFAULT_AGENTS, SPEC_FORMS, make_agents, split_specs

RUN_FILE = "run.json"
SUMMARY_FILE = "summary.json"
#: settings that must match to resume a run folder (agents may be added)
RESUME_KEYS = ("task_file", "task_file_fingerprint", "task_generator", "editor", "editor_options", "split",
               "noise", "tasks", "seed", "group_size", "groups_per_task", "max_steps", "size", "metrics", "vlm_options")
SUMMARY_COLUMNS = ("name", "episodes", "success_rate", "mean_reward", "mean_oracle", "mean_oracle_progress",
                   "mean_steps", "mean_edits")


@dataclass
class RunSettings:
    """Everything ``mira run`` was asked to do (saved to ``run.json``)."""

    agents: list[str] = field(default_factory=lambda: list(DEFAULT_AGENTS), metadata={
        "help": "Agent specs (space- or comma-separated; default " + " ".join(DEFAULT_AGENTS) + "). Forms: "
                + ", ".join(SPEC_FORMS)})
    tasks: int | None = field(default=None, metadata={
        "help": f"Number of tasks (shapes world: generated, default {SHAPES_DEFAULT_TASKS}; task file: the first N, "
                f"default all)."})
    split: str = field(default="test", metadata={"help": "Shapes-world split to generate tasks from."})
    noise: float = field(default=0.0, metadata={"help": "Shapes-world editor noise in [0, 1] (0 = a perfect editor)."})
    group_size: int = field(default=2, metadata={"help": "G: episodes per task with the same editor seeds."})
    groups_per_batch: int = field(default=2, metadata={"help": "Groups played side by side in one batch."})
    groups_per_task: int = field(default=1, metadata={"help": "Groups per task (each with its own seed)."})
    seed: int = field(default=0, metadata={"help": "Base seed of task generation, group seeds and random agents."})
    max_steps: int | None = field(default=None, metadata={
        "help": "Step budget T_max (default: the edit budget vlm:<folder> policies were trained with, from their "
                "mira_policy.json; else the env's)."})
    task_file: str | None = field(default=None, metadata={
        "help": "A .jsonl task file, an image folder or a saved datasets folder (instead of the shapes world)."})
    editor: str | None = field(default=None, metadata={
        "help": "Editor spec for --task_file: 'identity', a diffusers preset, hub id or local path."})
    editor_options: dict = field(default_factory=dict, metadata={
        "help": "Keyword arguments for the editor, as JSON, e.g. '{\"device\": \"cuda\"}'."})
    metrics: list[str] = field(default_factory=list, metadata={
        "help": "Reward terms logged per episode for --task_file runs (see mira eval --metrics)."})
    size: int = field(default=256, metadata={"help": "Observation size (pixels) for task-file environments."})
    images: str = field(default="both", metadata={"help": "Images written per episode.", "choices": IMAGE_MODES})
    vlm_options: dict = field(default_factory=dict, metadata={
        "help": "Keyword arguments for VLM agents, as JSON, e.g. '{\"device\": \"cuda\", \"max_new_tokens\": 32}'."})
    out: str | None = field(default=None, metadata={
        "help": "Run folder (the command's default: runs/<--name or timestamp>); reused to resume."})
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
        self.metrics = [m.strip() for part in self.metrics for m in str(part).split(",") if m.strip()]

    def resolved(self) -> dict[str, Any]:
        """The settings as ``run.json`` records them (:func:`~mira_env.agents.commands.resolve_play_settings`)."""
        return resolve_play_settings(self)


def env_kwargs(settings: RunSettings) -> dict[str, Any]:
    """The :func:`mira_env.make` arguments of the run: the shapes world (oracle + oracle_progress), or task file +
    editor (+ metrics)."""
    from mira_env.agents.commands.metrics import build_metric_reward, shapes_reward

    if settings.task_file is None:
        if settings.editor not in (None, "shapes"):
            raise ConfigError(f"--editor {settings.editor!r} needs --task_file; the shapes world uses its own editor "
                              f"(set its noise with --noise)")
        if settings.metrics:
            raise ConfigError("--metrics applies to --task_file runs; shapes-world runs log the oracle reward "
                              "(use mira eval for more metrics)")
        tasks = SHAPES_DEFAULT_TASKS if settings.tasks is None else settings.tasks
        return {"tasks": "shapes", "split": settings.split, "num_tasks": tasks, "noise": settings.noise,
                "seed": settings.seed, "max_steps": settings.max_steps, "reward": shapes_reward()}
    if not settings.editor:
        raise ConfigError("--task_file needs --editor (identity, a diffusers preset, a hub id or a local path)")
    reward = build_metric_reward(settings.metrics)[0] if settings.metrics else None
    return {"tasks": settings.task_file, "editor": settings.editor, "editor_options": settings.editor_options,
            "reward": reward, "size": settings.size, "max_steps": settings.max_steps}


def task_indices(settings: RunSettings, num_tasks: int) -> list[int]:
    count = num_tasks if settings.tasks is None else settings.tasks
    check_int("tasks", count)
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
    records = [r for r in records_all if r.agent in agents and r.task_id in task_ids]
    baseline = None
    if settings.baseline and BASELINE_AGENT not in agents:
        baseline = play_baseline(venv, indices, config, out)
        write_json(out / BASELINE_DIR / SUMMARY_FILE, summarize(baseline))
    world = "shapes world" if settings.task_file is None else settings.task_file
    notes = [f"{len(tasks)} tasks x {config.groups_per_task} group(s) x G={config.group_size}; seed {settings.seed}; "
             f"folder {out}"] + ([BASELINE_NOTE] if baseline else [])
    report = write_run_report(out, records, title=f"mira run: {', '.join(agents)} on {world}", notes=notes,
                              template_dir=settings.report_templates, baseline=baseline)
    write_json(out / SUMMARY_FILE, summarize(records))
    venv.close()
    return out, records, report
