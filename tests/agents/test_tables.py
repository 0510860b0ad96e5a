"""Research-grade tables: 95% intervals (scipy), the no-op baseline row, oracle_progress, run provenance."""

from __future__ import annotations

import csv
import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from mira_env.agents.intervals import mean_interval, wilson_interval
from mira_env.agents.report import format_table, summarize
from mira_env.train.cli import main as mira

REPO = Path(__file__).resolve().parents[2]


def wilson_by_hand(k: int, n: int, z: float = 1.959963984540054) -> list[float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [centre - half, centre + half]


@pytest.mark.parametrize("k, n", [(0, 4), (5, 10), (10, 10), (1, 3)])
def test_wilson_interval_is_the_closed_form(k, n):
    assert wilson_interval(k, n) == pytest.approx(wilson_by_hand(k, n), abs=1e-12)


def test_mean_interval_is_student_t_and_needs_two_values():
    low, high = mean_interval([1.0, 2.0, 3.0, None, float("nan")])
    half = stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)
    assert (low, high) == pytest.approx((2.0 - half, 2.0 + half), abs=1e-12)
    assert mean_interval([0.5]) is None and mean_interval([]) is None and wilson_interval(0, 0) is None
    assert mean_interval([0.25, 0.25, 0.25]) == [0.25, 0.25]
    with pytest.raises(ValueError, match=r"confidence=1.5 must be in \(0, 1\)"):
        mean_interval([1.0, 2.0], confidence=1.5)
    with pytest.raises(ValueError, match=r"successes=5 must be in \[0, trials=4\]"):
        wilson_interval(5, 4)


def test_summary_rows_carry_intervals_and_the_table_shows_them():
    records = [{"agent": "a", "task_id": "t", "group_index": 0, "member_index": i, "success": s, "final_reward": r,
                "return": r, "num_steps": 1, "num_edits": 0, "final_components": {"oracle": r, "success": float(s)},
                "steps": []}
               for i, (s, r) in enumerate(((True, 1.0), (False, 0.5), (True, 0.75), (True, 1.0)))]
    (row,) = summarize(records)
    assert row["success_rate"] == 0.75 and row["success_rate_ci95"] == pytest.approx(wilson_by_hand(3, 4))
    assert row["mean_oracle_ci95"] == pytest.approx(mean_interval([1.0, 0.5, 0.75, 1.0]))
    assert row["mean_reward_ci95"] == row["mean_oracle_ci95"] and "mean_success_ci95" not in row
    low, high = row["success_rate_ci95"]
    table = format_table([row], ["name", "success_rate", "mean_oracle"], intervals=True)
    assert table.splitlines()[2].split() == ["a", "0.750", f"[{low:.2f},", f"{high:.2f}]", f"{row['mean_oracle']:.3f}",
                                             f"[{row['mean_oracle_ci95'][0]:.2f},", f"{row['mean_oracle_ci95'][1]:.2f}]"]
    assert format_table([row], ["name", "success_rate"]).splitlines()[2].split() == ["a", "0.750"]


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_mira_run_shows_intervals_a_no_op_row_and_oracle_progress_and_records_provenance(tmp_path, capsys):
    out = tmp_path / "r"
    assert mira(["run", "--agents", "oracle,one-shot", "--tasks", "3", "--group_size", "2", "--out", str(out),
                 "--progress", "false"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("name"))
    assert lines[header].split()[:6] == ["name", "episodes", "success_rate", "mean_reward", "mean_oracle",
                                         "mean_oracle_progress"]
    oracle, one_shot, no_op = (lines[header + 2 + i].split() for i in range(3))
    assert oracle[:5] == ["oracle", "6", "1.000", f"[{wilson_by_hand(6, 6)[0]:.2f},", "1.00]"]
    assert no_op[:3] == ["no-op", "3", "0.000"]  # one episode per task: G identical no-op episodes prove nothing
    assert "no-op: the baseline row (answers <STOP> at once" in lines[header + 5]
    summary = json.loads((out / "summary.json").read_text())
    assert [row["name"] for row in summary] == ["oracle", "one-shot"]
    assert summary[0]["mean_oracle_progress"] == 1.0 and summary[0]["success_rate_ci95"][1] == pytest.approx(1.0)
    (baseline,) = json.loads((out / "baseline" / "summary.json").read_text())
    assert baseline["name"] == "no-op" and baseline["mean_oracle_progress"] == 0.0 and baseline["mean_edits"] == 0
    # the HTML report's table has the same no-op row (and the note), with no episode cards of its own
    html = (out / "report.html").read_text()
    assert "<td>no-op</td>" in html
    assert "no-op: the baseline row" in html
    saved = json.loads((out / "run.json").read_text())
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert saved["provenance"]["git_commit"] == head and saved["provenance"]["mira_env_version"] == "0.1.0"
    assert saved["baseline"] is True and isinstance(saved["provenance"]["git_dirty"], bool)
    # resuming keeps the baseline's episodes; --no-baseline leaves the row out
    assert mira(["run", "--agents", "oracle,one-shot", "--tasks", "3", "--group_size", "2", "--out", str(out),
                 "--progress", "false", "--baseline", "false"]) == 0
    assert "no-op" not in capsys.readouterr().out


def test_mira_eval_writes_interval_columns_and_baseline_rows(tmp_path, capsys):
    out = tmp_path / "e"
    assert mira(["eval", "--agents", "oracle,random", "--tasks", "4", "--out", str(out), "--progress", "false"]) == 0
    stdout = capsys.readouterr().out
    rows = read_csv(out / "metrics.csv")
    header = list(rows[0])
    assert header[:6] == ["agent", "editor", "episodes", "success_rate", "oracle", "oracle_progress"]
    assert header[6:] == ["l1", "mean_steps", "mean_edits", "editor_errors", "invalid_actions",
                          "success_rate_ci95_low", "success_rate_ci95_high", "oracle_ci95_low", "oracle_ci95_high",
                          "oracle_progress_ci95_low", "oracle_progress_ci95_high", "l1_ci95_low", "l1_ci95_high"]
    oracle = rows[0]
    assert [float(oracle["success_rate_ci95_low"]), float(oracle["success_rate_ci95_high"])] == pytest.approx(
        wilson_by_hand(4, 4))
    data = json.loads((out / "metrics.json").read_text())
    assert data["columns"] == header and data["confidence"] == 0.95
    (baseline,) = data["baseline"]
    assert (baseline["agent"], baseline["editor"], baseline["episodes"]) == ("no-op", "shapes", 4)
    assert baseline["success_rate"] == 0.0 and baseline["oracle_progress"] == 0.0 and baseline["l1"] == 0.0
    records = [json.loads(line) for line in (out / "editors" / "shapes" / "baseline" / "episodes.jsonl")
               .read_text().splitlines()]
    assert [r["num_steps"] for r in records] == [1, 1, 1, 1] and all(r["images"] == {} for r in records)
    table = stdout.splitlines()
    assert [line.split()[0] for line in table[2:5]] == ["oracle", "random", "no-op"]
    random_row = next(row for row in rows if row["agent"] == "random")
    mine = [json.loads(line) for line in (out / "editors" / "shapes" / "episodes.jsonl").read_text().splitlines()]
    progress = [r["final_components"]["oracle_progress"] for r in mine if r["agent"] == "random"]
    low, high = stats.t.interval(0.95, 3, loc=np.mean(progress), scale=stats.sem(progress))
    assert [float(random_row["oracle_progress_ci95_low"]), float(random_row["oracle_progress_ci95_high"])] == \
        pytest.approx([low, high])
