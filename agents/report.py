"""Summaries and self-contained HTML reports of run folders (episodes.jsonl + PNG images).

The pages are jinja2 templates shipped in ``agents/templates/report/`` (``base.html``, ``macros.html``,
``run.html``, ``comparison.html``, ``report.css``); a folder given as ``template_dir`` (``--report-templates``)
overrides any of them, e.g. only ``report.css``, or a ``run.html`` that extends ``base.html``.

Every image is embedded as a ``data:image/png;base64`` URI and the CSS is inline: a report is one
file that opens anywhere, with no external assets. Two reports:

- :func:`write_run_report`: per agent a summary row, then every episode: the source, each step's
  instruction and image, and the final image next to the target (when the task has one).
- :func:`write_comparison_report`: the metrics table, then per task the final images of every
  column (agent, or agent x editor) side by side.

The task index (``tasks.json``, written by :func:`write_task_index`) gives each task's instruction,
source and target images.
"""

from __future__ import annotations

import base64
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
from PIL import Image

from mira_env.episodes import EpisodeRecord, to_jsonable
from mira_env.errors import ConfigError
from mira_env.runs import atomic_write_text, save_image, slug, write_json

from mira_env.agents.intervals import SUFFIX, mean_interval, wilson_interval

#: records as the public functions take them: typed, or their JSON objects (read with EpisodeRecord.from_dict)
Records = Sequence[EpisodeRecord | Mapping[str, Any]]

TASK_INDEX = "tasks.json"
REPORT_FILE = "report.html"


# ---------------------------------------------------------------------- numbers
def _mean(values: Iterable[Any]) -> float | None:
    numbers = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(numbers) / len(numbers) if numbers else None


def summarize(records: Records, by: Callable[[EpisodeRecord], str] | None = None) -> list[dict[str, Any]]:
    """One row per agent (or per ``by(record)``, given the typed record): episodes, success rate, mean reward,
    steps, components. ``records``: :class:`~mira_env.episodes.EpisodeRecord` s or their JSON objects.

    ``success_rate`` is ``None`` when no episode knows its success; ``mean_<component>`` is the mean
    of each final reward component over the episodes that have it (unscored ones are left out and
    counted in ``unscored``). Beside the success rate, the mean reward / return and every component mean,
    ``<key>_ci95`` holds its 95% interval ``[low, high]`` (:mod:`mira_env.agents.intervals`: Wilson, Student t;
    ``None`` below two values).
    """
    key = by or (lambda record: record.agent)
    groups: dict[str, list[EpisodeRecord]] = {}
    for record in map(EpisodeRecord.coerce, records):
        groups.setdefault(key(record), []).append(record)
    rows = []
    for name, group in groups.items():
        successes = [r.success for r in group if r.success is not None]
        components: dict[str, list[Any]] = {}
        for record in group:
            for component, value in (record.final_components or {}).items():
                components.setdefault(component, []).append(value)
        wins = sum(bool(s) for s in successes)
        row: dict[str, Any] = {
            "name": name, "episodes": len(group),
            "success_rate": (wins / len(successes)) if successes else None,
            "success_rate" + SUFFIX: wilson_interval(wins, len(successes)) if successes else None,
            "mean_reward": _mean(r.final_reward for r in group),
            "mean_return": _mean(r.total_return for r in group),
            "mean_steps": _mean(r.num_steps for r in group),
            "mean_edits": _mean(r.num_edits for r in group),
            "unscored": sum(1 for r in group if r.final_reward is None),
            "editor_errors": sum(1 for r in group for s in r.steps if s.editor_error),
            "invalid_actions": sum(1 for r in group for s in r.steps if not s.valid),
        }
        for component in sorted(components):
            if component != "success":
                row[f"mean_{component}"] = _mean(components[component])
                row[f"mean_{component}{SUFFIX}"] = mean_interval(components[component])
        row["mean_reward" + SUFFIX] = mean_interval(r.final_reward for r in group)
        row["mean_return" + SUFFIX] = mean_interval(r.total_return for r in group)
        rows.append(row)
    return rows


def format_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def format_cell(row: Mapping[str, Any], column: str, intervals: bool = False) -> str:
    """``row[column]`` as a table shows it; with ``intervals``, followed by its 95% interval when the row has one
    (``0.750 [0.41, 0.93]``)."""
    text = format_value(row.get(column))
    interval = row.get(column + SUFFIX) if intervals else None
    if interval is not None and row.get(column) is not None:
        text += f" [{interval[0]:.2f}, {interval[1]:.2f}]"
    return text


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], intervals: bool = False) -> str:
    """A plain-text table (for the terminal) of ``columns`` of ``rows``; missing values show as ``-``.

    ``intervals`` adds each value's 95% interval (the row's ``<column>_ci95``) in the same cell."""
    cells = [[format_cell(row, column, intervals) for column in columns] for row in rows]
    widths = [max([len(column)] + [len(line[i]) for line in cells]) for i, column in enumerate(columns)]
    lines = ["  ".join(column.ljust(width) for column, width in zip(columns, widths)),
             "  ".join("-" * width for width in widths)]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)) for line in cells]
    return "\n".join(lines)


# ---------------------------------------------------------------------- task index
def write_task_index(run_dir: str | os.PathLike, tasks: Iterable[Any], size: tuple[int, int] | None = None) -> Path:
    """Write each task's source (and target, when known) as PNG plus ``tasks.json``; returns its path.

    ``size`` = (height, width) resizes the images (the environment's observation size keeps the
    report small). Tasks already in the index are kept (a resumed run adds only new ones).
    """
    base = Path(run_dir)
    path = base / TASK_INDEX
    index: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    for task in tasks:
        if task.id in index:
            continue
        entry: dict[str, Any] = {"instruction": task.instruction}
        folder = Path("tasks") / slug(task.id)
        for name, loader in (("source", task.load_source), ("target", task.load_target)):
            image = loader()
            if image is None:
                continue
            if size is not None:
                image = image.resize((size[1], size[0]), Image.Resampling.BICUBIC)
            save_image(base / folder / f"{name}.png", image.convert("RGB"))
            entry[name] = (folder / f"{name}.png").as_posix()
        index[task.id] = entry
    write_json(path, to_jsonable(index))
    return path


def read_task_index(run_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(run_dir) / TASK_INDEX
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


# ---------------------------------------------------------------------- HTML pieces
def data_uri(path: str | os.PathLike) -> str:
    """The PNG at ``path`` as a ``data:image/png;base64,...`` URI."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def array_data_uri(array: np.ndarray) -> str:
    """An RGB array as a PNG data URI."""
    import io

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(array, dtype=np.uint8), "RGB").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


#: the folder of the report templates shipped with the package (package data)
TEMPLATES = Path(__file__).resolve().parent / "templates" / "report"


def report_environment(template_dir: str | os.PathLike | None = None):
    """The jinja2 environment of the reports: templates from ``template_dir`` first (override any of
    ``base.html``, ``macros.html``, ``run.html``, ``comparison.html``, ``report.css``), then the shipped ones.

    Autoescaped (record text can never inject markup) and strict (a template naming a missing variable fails).
    """
    import jinja2

    loaders = []
    if template_dir is not None:
        folder = Path(template_dir)
        if not folder.is_dir():
            shipped = sorted(p.name for p in TEMPLATES.iterdir() if p.is_file() and p.suffix != ".py")
            raise ConfigError(f"report template folder {str(folder)!r} does not exist; pass a folder holding your "
                              f"versions of any of {shipped}")
        loaders.append(jinja2.FileSystemLoader(str(folder)))
    loaders.append(jinja2.FileSystemLoader(str(TEMPLATES)))
    environment = jinja2.Environment(loader=jinja2.ChoiceLoader(loaders), autoescape=True,
                                     undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.globals.update(value=format_value, cell=lambda row, column: format_cell(row, column, intervals=True))
    return environment


def render_report(template: str, context: Mapping[str, Any], template_dir: str | os.PathLike | None = None) -> str:
    """``template`` (``run.html`` or ``comparison.html``) rendered with ``context``."""
    return report_environment(template_dir).get_template(template).render(**context)


def _inside(run_dir: Path, relative: Any) -> Path | None:
    """``run_dir / relative`` when it is a file inside the run folder; None otherwise (a record edited to point
    at ``../../secret`` never gets another file into the report)."""
    from mira_env.runs import RunFolderError, inside

    if not relative or not isinstance(relative, str):
        return None
    try:
        path = inside(run_dir, relative)
    except (RunFolderError, OSError, ValueError):
        return None
    return path if path.is_file() else None


def _uri(run_dir: Path, relative: str | None) -> str | None:
    path = _inside(run_dir, relative)
    return data_uri(path) if path is not None else None


def _strip_frames(run_dir: Path, record: EpisodeRecord) -> list[str] | None:
    """Frames cut out of the episode strip (when per-step images were not written)."""
    path = _inside(run_dir, record.images.get("strip"))
    if path is None:
        return None
    try:
        array = np.asarray(Image.open(path).convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    count = len(record.steps) + 1
    width = (array.shape[1] - 2 * (count - 1)) // count
    return [array_data_uri(array[:, i * (width + 2): i * (width + 2) + width]) for i in range(count)]


def episode_context(run_dir: Path, record: EpisodeRecord | Mapping[str, Any],
                    task: Mapping[str, Any] | None) -> dict[str, Any]:
    """What ``run.html`` shows of one episode: source, every step (instruction + image), the final image and the
    target (when the task has one), the final components."""
    record = EpisodeRecord.coerce(record)
    steps = record.steps
    source = _uri(run_dir, record.images.get("source"))
    step_uris = [_uri(run_dir, s.image) for s in steps]
    if source is None or any(u is None for u in step_uris):
        frames = _strip_frames(run_dir, record)
        if frames is not None:
            source, step_uris = frames[0], frames[1:]
    if source is None and task is not None:
        source = _uri(run_dir, task.get("source"))
    final = next((u for u, s in zip(reversed(step_uris), reversed(steps)) if u is not None), source)
    has_target = task is not None and bool(task.get("target"))
    return {
        "id": slug(record.agent + "-" + record.task_id) + f"-g{record.group_index}-m{record.member_index}",
        "record": record, "source": source, "final": final, "has_target": has_target,
        "target": _uri(run_dir, task["target"]) if has_target else None,
        "steps": [{"uri": uri, "step": step} for uri, step in zip(step_uris, steps) if not step.stop],
        "stop_step": steps[-1].t if steps and steps[-1].stop else None,
        "scores": list((record.final_components or {}).items()),
    }


SUMMARY_COLUMNS = ("name", "episodes", "success_rate", "mean_reward", "mean_oracle", "mean_steps", "mean_edits",
                   "editor_errors", "invalid_actions")


def write_run_report(run_dir: str | os.PathLike, records: Records, *, title: str = "mira run",
                     notes: Sequence[str] = (), path: str | os.PathLike | None = None,
                     max_episodes_per_agent: int | None = 100, template_dir: str | os.PathLike | None = None,
                     baseline: Records = ()) -> Path:
    """Write ``report.html`` (or ``path``) for ``records`` of the run folder ``run_dir``; returns its path.

    The page is the ``run.html`` template (:func:`report_environment`: ``template_dir`` overrides any template).

    The summary table covers every record, followed by the rows of ``baseline`` (the no-op baseline's records,
    :func:`mira_env.agents.commands.baseline.play_baseline`; its episodes get no cards); the episode cards are
    limited to the first ``max_episodes_per_agent`` episodes of each agent (``None``: all) to keep the file small,
    with a note.
    """
    base = Path(run_dir)
    records = [EpisodeRecord.coerce(r) for r in records]
    tasks = read_task_index(base)
    rows = summarize(records) + (summarize(baseline) if baseline else [])
    columns = [c for c in SUMMARY_COLUMNS if any(row.get(c) is not None for row in rows) or c == "name"]
    extra = sorted({k for row in rows for k in row if k.startswith("mean_") and k not in columns
                    and k not in ("mean_return",) and not k.endswith(SUFFIX)})
    agent_order = {name: i for i, name in enumerate(dict.fromkeys(r.agent for r in records))}
    ordered = sorted(records, key=lambda r: (agent_order[r.agent], r.task_index or 0, r.task_id, r.group_index,
                                             r.member_index))
    totals: dict[str, int] = {}
    for record in records:
        totals[record.agent] = totals.get(record.agent, 0) + 1
    agents: list[dict[str, Any]] = []
    for record in ordered:
        if not agents or agents[-1]["name"] != record.agent:
            total = totals[record.agent]
            shown = total if max_episodes_per_agent is None else min(total, max_episodes_per_agent)
            agents.append({"name": record.agent, "total": total, "shown": shown, "episodes": []})
        if len(agents[-1]["episodes"]) < agents[-1]["shown"]:
            agents[-1]["episodes"].append(episode_context(base, record, tasks.get(record.task_id)))
    page = render_report("run.html", {"title": title, "rows": rows, "columns": columns + extra, "notes": list(notes),
                                      "agents": agents}, template_dir)
    target = Path(path) if path is not None else base / REPORT_FILE
    atomic_write_text(target, page)  # redacted: no secret reaches the report
    return target


def _final_uri(run_dir: Path, record: EpisodeRecord) -> str | None:
    """The episode's last image: its last step image, else the strip's last frame, else its source."""
    uris = [_uri(run_dir, s.image) for s in record.steps]
    final = next((u for u in reversed(uris) if u is not None), None)
    if final is None:
        frames = _strip_frames(run_dir, record)
        final = frames[-1] if frames else _uri(run_dir, record.images.get("source"))
    return final


def write_comparison_report(path: str | os.PathLike, columns: Mapping[str, tuple[Path, Records]],
                            metrics_rows: Sequence[Mapping[str, Any]], metric_columns: Sequence[str], *,
                            task_index_dir: str | os.PathLike, title: str = "mira eval",
                            notes: Sequence[str] = (), max_tasks: int | None = 100,
                            template_dir: str | os.PathLike | None = None) -> Path:
    """Agents (x editors) side by side on the same tasks: the ``comparison.html`` template (``template_dir``
    overrides any template, :func:`report_environment`).

    ``columns`` maps a column label to ``(run_dir, records)``; for every task the first member of
    group 0 of each column is shown (its final image and final metrics), after the task's source
    and target from the task index in ``task_index_dir``; at most ``max_tasks`` tasks (``None``: all).
    """
    tasks = read_task_index(task_index_dir)
    notes = list(notes)
    by_task: dict[str, dict[str, tuple[Path, EpisodeRecord]]] = {}
    order: list[str] = []
    for label, (run_dir, records) in columns.items():
        typed = [EpisodeRecord.coerce(r) for r in records]
        for record in sorted(typed, key=lambda r: (r.group_index, r.member_index)):
            if record.task_id not in order:
                order.append(record.task_id)
            by_task.setdefault(record.task_id, {}).setdefault(label, (Path(run_dir), record))
    if max_tasks is not None and len(order) > max_tasks:
        notes.append(f"showing the first {max_tasks} of {len(order)} tasks; the metrics table covers all of them")
        order = order[:max_tasks]
    base = Path(task_index_dir)
    shown = []
    for task_id in order:
        task = tasks.get(task_id, {})
        cells = []
        for label in columns:
            if label not in by_task[task_id]:
                cells.append({"label": label, "record": None, "final": None})
                continue
            run_dir, record = by_task[task_id][label]
            cells.append({"label": label, "record": record, "final": _final_uri(run_dir, record)})
        shown.append({"id": task_id, "instruction": str(task.get("instruction", "")),
                      "source": _uri(base, task.get("source")), "has_target": bool(task.get("target")),
                      "target": _uri(base, task["target"]) if task.get("target") else None, "columns": cells})
    page = render_report("comparison.html", {"title": title, "rows": list(metrics_rows), "columns": list(metric_columns),
                                             "notes": notes, "tasks": shown}, template_dir)
    target = Path(path)
    atomic_write_text(target, page)  # redacted: no secret reaches the report
    return target


__all__ = ["REPORT_FILE", "SUMMARY_COLUMNS", "TASK_INDEX", "TEMPLATES", "array_data_uri", "data_uri",
           "episode_context", "format_cell", "format_table", "format_value", "read_task_index", "render_report",
           "report_environment", "summarize", "write_comparison_report", "write_run_report", "write_task_index"]
