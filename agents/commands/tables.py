"""The tables of ``mira eval``: one row per (agent, editor), its columns, and ``metrics.csv`` / ``metrics.json``."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Mapping, Sequence

from mira_env.agents.intervals import CONFIDENCE, SUFFIX

TABLE_COLUMNS = ("agent", "editor", "episodes", "success_rate", "oracle", "oracle_progress", "judge_sc", "judge_pq",
                 "judge_overall", "clip_t", "clip_dir", "clip_i", "lpips", "l1", "l2", "mean_steps", "mean_edits", "editor_errors",
                 "invalid_actions")


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
            if not records or any((r.final_components or {}).get(name) is not None for r in records):
                continue
            reasons = [(s.reward_errors or {}).get(name) for r in records for s in r.steps]
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
