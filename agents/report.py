"""Summaries and self-contained HTML reports of run folders (episodes.jsonl + PNG images).

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
import html
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
from PIL import Image

from mira_env.runs import atomic_write_text, save_image, write_json

from mira_env.agents.intervals import SUFFIX, mean_interval, wilson_interval
from mira_env.agents.rollout import slug, to_jsonable

TASK_INDEX = "tasks.json"
REPORT_FILE = "report.html"


# ---------------------------------------------------------------------- numbers
def _mean(values: Iterable[Any]) -> float | None:
    numbers = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(numbers) / len(numbers) if numbers else None


def summarize(records: Sequence[Mapping[str, Any]], by: Callable[[Mapping[str, Any]], str] | None = None
              ) -> list[dict[str, Any]]:
    """One row per agent (or per ``by(record)``): episodes, success rate, mean reward, steps, components.

    ``success_rate`` is ``None`` when no episode knows its success; ``mean_<component>`` is the mean
    of each final reward component over the episodes that have it (unscored ones are left out and
    counted in ``unscored``). Beside the success rate, the mean reward / return and every component mean,
    ``<key>_ci95`` holds its 95% interval ``[low, high]`` (:mod:`mira_env.agents.intervals`: Wilson, Student t;
    ``None`` below two values).
    """
    key = by or (lambda record: record["agent"])
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        groups.setdefault(key(record), []).append(record)
    rows = []
    for name, group in groups.items():
        successes = [r["success"] for r in group if r.get("success") is not None]
        components: dict[str, list[Any]] = {}
        for record in group:
            for component, value in (record.get("final_components") or {}).items():
                components.setdefault(component, []).append(value)
        wins = sum(bool(s) for s in successes)
        row: dict[str, Any] = {
            "name": name, "episodes": len(group),
            "success_rate": (wins / len(successes)) if successes else None,
            "success_rate" + SUFFIX: wilson_interval(wins, len(successes)) if successes else None,
            "mean_reward": _mean(r.get("final_reward") for r in group),
            "mean_return": _mean(r.get("return") for r in group),
            "mean_steps": _mean(r.get("num_steps") for r in group),
            "mean_edits": _mean(r.get("num_edits") for r in group),
            "unscored": sum(1 for r in group if r.get("final_reward") is None),
            "editor_errors": sum(1 for r in group for s in r.get("steps", []) if s.get("editor_error")),
            "invalid_actions": sum(1 for r in group for s in r.get("steps", []) if not s.get("valid", True)),
        }
        for component in sorted(components):
            if component != "success":
                row[f"mean_{component}"] = _mean(components[component])
                row[f"mean_{component}{SUFFIX}"] = mean_interval(components[component])
        for key, field_name in (("mean_reward", "final_reward"), ("mean_return", "return")):
            row[key + SUFFIX] = mean_interval(r.get(field_name) for r in group)
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


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#1d232a;background:#fafafa}
h1{font-size:22px} h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:14px;margin:0 0 6px 0}
table{border-collapse:collapse;margin:8px 0 16px 0;font-size:13px;background:#fff}
th,td{border:1px solid #ccd;padding:4px 8px;text-align:right} th{background:#eef} td:first-child,th:first-child{text-align:left}
.episode{background:#fff;border:1px solid #dde;border-radius:6px;padding:10px;margin:10px 0}
.row{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start}
figure{margin:0;width:136px;font-size:11px} figure img{width:128px;height:128px;image-rendering:pixelated;
border:1px solid #ccc;display:block;object-fit:contain;background:#fff}
figcaption{margin-top:2px;word-wrap:break-word}
.sep{border-left:2px dashed #bbb;margin:0 6px;align-self:stretch}
.ok{color:#137333;font-weight:600} .bad{color:#b3261e;font-weight:600} .muted{color:#667}
.note{font-size:12px;color:#555}
"""


def _figure(uri: str | None, caption: str, cls: str = "") -> str:
    if uri is None:
        return f'<figure class="{cls}"><div class="muted">(no image)</div><figcaption>{caption}</figcaption></figure>'
    return (f'<figure class="{cls}"><img src="{uri}" alt="{html.escape(caption, quote=True)[:80]}">'
            f"<figcaption>{caption}</figcaption></figure>")


def _table_html(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(format_cell(row, c, intervals=True))}</td>" for c in columns)
                   + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>")


def _verdict(record: Mapping[str, Any]) -> str:
    success = record.get("success")
    if success is None:
        return '<span class="muted">success unknown</span>'
    return '<span class="ok">success</span>' if success else '<span class="bad">failed</span>'


def _step_caption(step: Mapping[str, Any]) -> str:
    text = html.escape(step.get("instruction") or "")
    extra = []
    if not step.get("valid", True):
        extra.append(f'<span class="bad">invalid ({html.escape(str(step.get("invalid_reason")))})</span>')
    if step.get("editor_error"):
        extra.append(f'<span class="bad">editor error: {html.escape(str(step["editor_error"]))[:200]}</span>')
    status = step.get("editor_status")
    if isinstance(status, Mapping) and status.get("ok") is False:
        extra.append(f'<span class="bad">{html.escape(str(status.get("reason", "edit failed")))[:200]}</span>')
    raw = step.get("raw_output")
    if raw is not None and raw != step.get("action"):
        extra.append(f'<span class="muted">raw: {html.escape(str(raw))[:160]}</span>')
    return f"{step.get('t')}. {text}" + "".join(f"<br>{e}" for e in extra)


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


def _strip_frames(run_dir: Path, record: Mapping[str, Any]) -> list[str] | None:
    """Frames cut out of the episode strip (when per-step images were not written)."""
    path = _inside(run_dir, (record.get("images") or {}).get("strip"))
    if path is None:
        return None
    try:
        array = np.asarray(Image.open(path).convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    count = len(record.get("steps", [])) + 1
    width = (array.shape[1] - 2 * (count - 1)) // count
    return [array_data_uri(array[:, i * (width + 2): i * (width + 2) + width]) for i in range(count)]


def episode_html(run_dir: Path, record: Mapping[str, Any], task: Mapping[str, Any] | None) -> str:
    """One episode: source, every step (instruction + image), then the final image next to the target."""
    steps = record.get("steps", [])
    images = record.get("images") or {}
    source = _uri(run_dir, images.get("source"))
    step_uris = [_uri(run_dir, s.get("image")) for s in steps]
    if source is None or any(u is None for u in step_uris):
        frames = _strip_frames(run_dir, record)
        if frames is not None:
            source, step_uris = frames[0], frames[1:]
    if source is None and task is not None:
        source = _uri(run_dir, task.get("source"))
    figures = [_figure(source, "source")]
    figures += [_figure(uri, _step_caption(step)) for uri, step in zip(step_uris, steps) if not step.get("stop")]
    if steps and steps[-1].get("stop"):
        figures.append(f'<figure><div class="muted">&lt;STOP&gt; at step {steps[-1].get("t")}</div></figure>')
    final = next((u for u, s in zip(reversed(step_uris), reversed(steps)) if u is not None), source)
    end = [_figure(final, "final")]
    if task is not None and task.get("target"):
        end.append(_figure(_uri(run_dir, task["target"]), "target"))
    components = record.get("final_components") or {}
    scores = ", ".join(f"{html.escape(k)}={format_value(v)}" for k, v in components.items())
    return (f'<div class="episode" id="{html.escape(slug(str(record["agent"]) + "-" + str(record["task_id"])))}'
            f'-g{record["group_index"]}-m{record["member_index"]}">'
            f"<h3>{html.escape(str(record['agent']))} &middot; {html.escape(str(record['task_id']))} &middot; "
            f"group {record['group_index']} member {record['member_index']} &middot; {_verdict(record)} &middot; "
            f"reward {format_value(record.get('final_reward'))} &middot; {record.get('num_steps')} steps</h3>"
            f'<div class="note">{html.escape(str(record.get("instruction", "")))}'
            f'{"<br>" + scores if scores else ""}</div>'
            f'<div class="row">{"".join(figures)}<div class="sep"></div>{"".join(end)}</div></div>')


SUMMARY_COLUMNS = ("name", "episodes", "success_rate", "mean_reward", "mean_oracle", "mean_steps", "mean_edits",
                   "editor_errors", "invalid_actions")


def write_run_report(run_dir: str | os.PathLike, records: Sequence[Mapping[str, Any]], *, title: str = "mira run",
                     notes: Sequence[str] = (), path: str | os.PathLike | None = None,
                     max_episodes_per_agent: int | None = 100) -> Path:
    """Write ``report.html`` (or ``path``) for ``records`` of the run folder ``run_dir``; returns its path.

    The summary table covers every record; the episode cards are limited to the first
    ``max_episodes_per_agent`` episodes of each agent (``None``: all) to keep the file small, with a note.
    """
    base = Path(run_dir)
    tasks = read_task_index(base)
    rows = summarize(records)
    columns = [c for c in SUMMARY_COLUMNS if any(row.get(c) is not None for row in rows) or c == "name"]
    extra = sorted({k for row in rows for k in row if k.startswith("mean_") and k not in columns
                    and k not in ("mean_return",) and not k.endswith(SUFFIX)})
    body = [_table_html(rows, columns + extra)]
    body += [f'<p class="note">{html.escape(n)}</p>' for n in notes]
    agent_order = {name: i for i, name in enumerate(dict.fromkeys(str(r["agent"]) for r in records))}
    ordered = sorted(records, key=lambda r: (agent_order[str(r["agent"])], int(r.get("task_index", 0) or 0), str(r["task_id"]),
                                             int(r["group_index"]), int(r["member_index"])))
    current, shown = None, 0
    for record in ordered:
        if record["agent"] != current:
            current, shown = record["agent"], 0
            body.append(f"<h2>{html.escape(str(current))}</h2>")
            total = sum(1 for r in records if r["agent"] == current)
            if max_episodes_per_agent is not None and total > max_episodes_per_agent:
                body.append(f'<p class="note">showing the first {max_episodes_per_agent} of {total} episodes; '
                            f"every episode is in episodes.jsonl and strips/</p>")
        shown += 1
        if max_episodes_per_agent is not None and shown > max_episodes_per_agent:
            continue
        body.append(episode_html(base, record, tasks.get(str(record["task_id"]))))
    target = Path(path) if path is not None else base / REPORT_FILE
    atomic_write_text(target, _page(title, "".join(body)))  # redacted: no secret reaches the report
    return target


def write_comparison_report(path: str | os.PathLike, columns: Mapping[str, tuple[Path, Sequence[Mapping[str, Any]]]],
                            metrics_rows: Sequence[Mapping[str, Any]], metric_columns: Sequence[str], *,
                            task_index_dir: str | os.PathLike, title: str = "mira eval",
                            notes: Sequence[str] = (), max_tasks: int | None = 100) -> Path:
    """Agents (x editors) side by side on the same tasks.

    ``columns`` maps a column label to ``(run_dir, records)``; for every task the first member of
    group 0 of each column is shown (its final image and final metrics), after the task's source
    and target from the task index in ``task_index_dir``; at most ``max_tasks`` tasks (``None``: all).
    """
    tasks = read_task_index(task_index_dir)
    body = [_table_html(metrics_rows, metric_columns)]
    body += [f'<p class="note">{html.escape(n)}</p>' for n in notes]
    by_task: dict[str, dict[str, tuple[Path, Mapping[str, Any]]]] = {}
    order: list[str] = []
    for label, (run_dir, records) in columns.items():
        for record in sorted(records, key=lambda r: (int(r["group_index"]), int(r["member_index"]))):
            task_id = str(record["task_id"])
            if task_id not in order:
                order.append(task_id)
            by_task.setdefault(task_id, {}).setdefault(label, (Path(run_dir), record))
    if max_tasks is not None and len(order) > max_tasks:
        body.append(f'<p class="note">showing the first {max_tasks} of {len(order)} tasks; the metrics table '
                    f"covers all of them</p>")
        order = order[:max_tasks]
    for task_id in order:
        task = tasks.get(task_id, {})
        base = Path(task_index_dir)
        figures = [_figure(_uri(base, task.get("source")), "source")]
        if task.get("target"):
            figures.append(_figure(_uri(base, task["target"]), "target"))
        figures.append('<div class="sep"></div>')
        for label in columns:
            if label not in by_task[task_id]:
                figures.append(_figure(None, html.escape(label)))
                continue
            run_dir, record = by_task[task_id][label]
            steps = record.get("steps", [])
            uris = [_uri(run_dir, s.get("image")) for s in steps]
            final = next((u for u in reversed(uris) if u is not None), None)
            if final is None:
                frames = _strip_frames(run_dir, record)
                final = frames[-1] if frames else _uri(run_dir, (record.get("images") or {}).get("source"))
            components = record.get("final_components") or {}
            lines = [f"<b>{html.escape(label)}</b>", _verdict(record), f"{record.get('num_steps')} steps"]
            lines += [f"{html.escape(k)}={format_value(v)}" for k, v in components.items() if k != "success"]
            lines += [html.escape(s.get("instruction") or "")[:80] for s in steps if not s.get("stop")]
            figures.append(_figure(final, "<br>".join(lines)))
        body.append(f'<div class="episode"><h3>{html.escape(task_id)}</h3>'
                    f'<div class="note">{html.escape(str(task.get("instruction", "")))}</div>'
                    f'<div class="row">{"".join(figures)}</div></div>')
    target = Path(path)
    atomic_write_text(target, _page(title, "".join(body)))  # redacted: no secret reaches the report
    return target


__all__ = ["REPORT_FILE", "SUMMARY_COLUMNS", "TASK_INDEX", "array_data_uri", "data_uri", "episode_html",
           "format_table", "format_value", "read_task_index", "summarize", "write_comparison_report",
           "write_run_report", "write_task_index"]
