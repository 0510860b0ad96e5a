"""HTML reports: self-contained, and their images really render in a headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mira_env.agents.report import (format_table, summarize, write_comparison_report, write_run_report, write_task_index)
from mira_env.agents.rollout import EpisodeStore, RolloutConfig, RolloutEngine, plan_groups
from mira_env.episodes import EpisodeRecord
from mira_env.vector import BatchedEditEnv
from tests.agents.test_rollout import CountingAgent, LengthReward, StampEditor, make_tasks

CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)),
                None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed "
                                    "(apt-get install -y chromium)")

MARKER_SCRIPT = """<script>
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var ok = images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images-total', String(images.length));
  document.body.setAttribute('data-images-ok', String(ok));
});
</script>"""


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
               *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=90)


def rendered_images(report: Path, tmp_path: Path) -> tuple[int, int, np.ndarray]:
    """(images in the page, images decoded with naturalWidth > 0, screenshot pixels) of ``report``."""
    marked = tmp_path / "marked.html"
    marked.write_text(report.read_text(encoding="utf-8").replace("</body>", MARKER_SCRIPT + "</body>"),
                      encoding="utf-8")
    dump = chromium("--virtual-time-budget=10000", "--dump-dom", marked.as_uri(), profile=tmp_path / "profile-dom")
    match = re.search(r'data-images-total="(\d+)"[^>]*data-images-ok="(\d+)"', dump.stdout)
    assert match, f"no marker in the dumped DOM; chromium said: {dump.stderr[-2000:]}"
    shot = tmp_path / "shot.png"
    result = chromium("--window-size=1000,1400", f"--screenshot={shot}", report.as_uri(),
                      profile=tmp_path / "profile-shot")
    assert shot.is_file(), result.stderr[-2000:]
    return int(match.group(1)), int(match.group(2)), np.asarray(Image.open(shot).convert("RGB"))


def colourful_fraction(pixels: np.ndarray) -> float:
    """Share of pixels with clearly saturated colour (page chrome and text are grey scale)."""
    spread = pixels.max(axis=2).astype(int) - pixels.min(axis=2).astype(int)
    return float((spread > 60).mean())


def small_run(tmp_path: Path, images: str = "both") -> tuple[Path, list[EpisodeRecord]]:
    venv = BatchedEditEnv(4, editor=StampEditor(), tasks=make_tasks(2), reward=LengthReward(), height=32, width=32)
    config = RolloutConfig(group_size=2, groups_per_batch=2, progress=False, images=images)
    run = tmp_path / "run"
    store = EpisodeStore(run)
    write_task_index(run, venv.tasks, size=(32, 32))
    RolloutEngine(venv, CountingAgent(jitter=False), config, store).run(plan_groups(venv.tasks, config))
    return run, store.records()


@pytest.mark.parametrize("images", ["both", "strip"])
def test_run_report_is_self_contained_and_shows_every_step(tmp_path, images):
    run, records = small_run(tmp_path, images)
    report = write_run_report(run, records, title="test run")
    text = report.read_text(encoding="utf-8")
    assert "src=\"data:image/png;base64," in text
    assert not re.search(r'src="(?!data:)', text) and "<link" not in text and "http" not in text
    edits = sum(1 for r in records for s in r.steps if not s.stop)
    # per episode: the source, every edit, the final image; no targets in these tasks
    assert text.count("<img") == sum(1 for _ in records) * 2 + edits
    for record in records:
        for step in record.steps:
            if not step.stop:
                assert step.instruction in text


def test_the_run_report_table_has_the_no_op_baseline_row_and_typed_or_dict_records_give_the_same_page(tmp_path):
    from mira_env.agents.baselines import NoOpAgent

    run, records = small_run(tmp_path)
    venv = BatchedEditEnv(2, editor=StampEditor(), tasks=make_tasks(2), reward=LengthReward(), height=32, width=32)
    config = RolloutConfig(group_size=1, groups_per_batch=2, progress=False, images="none")
    baseline = RolloutEngine(venv, NoOpAgent(), config, name="no-op").run(plan_groups(venv.tasks, config))
    text = write_run_report(run, records, baseline=baseline).read_text(encoding="utf-8")
    table = text[text.index("<table>"): text.index("</table>")]
    rows = re.findall(r"<tr><td>([^<]+)</td><td>(\d+)</td>", table)
    assert rows == [("counting", "4"), ("no-op", "2")]
    assert 'id="no-op' not in text  # the baseline is a table row, not episode cards
    as_dicts = write_run_report(run, [r.to_dict() for r in records], baseline=[r.to_dict() for r in baseline],
                                path=tmp_path / "dicts.html").read_text(encoding="utf-8")
    assert as_dicts == text


def test_summary_rows_and_table(tmp_path):
    _, records = small_run(tmp_path)
    (row,) = summarize(records)
    assert row["name"] == "counting" and row["episodes"] == 4 and row["success_rate"] == 1.0
    assert row["mean_steps"] == np.mean([r.num_steps for r in records])
    assert row["mean_closeness"] == 0.0
    table = format_table([row, {"name": "other", "episodes": 0}], ["name", "episodes", "success_rate"])
    assert table.splitlines()[2].split() == ["counting", "4", "1.000"]
    assert table.splitlines()[3].split() == ["other", "0", "-"]


def test_comparison_report_puts_columns_side_by_side(tmp_path):
    run, records = small_run(tmp_path)
    report = write_comparison_report(tmp_path / "cmp.html", {"left": (run, records), "right": (run, records)},
                                     [{"name": "left", "x": 1.0}], ["name", "x"], task_index_dir=run)
    text = report.read_text(encoding="utf-8")
    # two tasks x (source + two columns)
    assert text.count("<img") == 2 * 3
    assert text.count("<b>left</b>") == 2 and text.count("<b>right</b>") == 2


@pytest.mark.browser
@needs_chromium
def test_run_report_images_render_in_headless_chromium(tmp_path):
    run, records = small_run(tmp_path)
    report = write_run_report(run, records)
    total, ok, pixels = rendered_images(report, tmp_path)
    assert total == report.read_text().count("<img") and total > 0
    assert ok == total
    assert colourful_fraction(pixels) > 0.005


@pytest.mark.browser
@needs_chromium
def test_the_default_mira_run_report_renders_every_image_in_headless_chromium(tmp_path):
    import os
    import sys

    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-m", "mira_env.train.cli", "run", "--no-progress"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(repo)})
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = (tmp_path / "runs").iterdir()
    report = run / "report.html"
    total, ok, pixels = rendered_images(report, tmp_path)
    assert total == report.read_text(encoding="utf-8").count("<img") > 50
    assert ok == total
    # shapes are saturated colours on plain backgrounds: a rendered page is far from grey
    assert colourful_fraction(pixels) > 0.01


def test_long_runs_show_a_limited_number_of_episode_cards_with_a_note(tmp_path):
    run, records = small_run(tmp_path)
    text = write_run_report(run, records, max_episodes_per_agent=1).read_text(encoding="utf-8")
    assert text.count('class="episode"') == 1
    assert "showing the first 1 of 4 episodes; every episode is in episodes.jsonl and strips/" in text
    full = write_run_report(run, records, max_episodes_per_agent=None).read_text(encoding="utf-8")
    assert full.count('class="episode"') == 4


def test_a_record_pointing_outside_the_run_folder_embeds_nothing(tmp_path):
    """Issue 12, item 10: paths read from episodes.jsonl are checked before the report reads them."""
    run, records = small_run(tmp_path)
    secret = tmp_path / "private.png"
    Image.new("RGB", (5, 7), (1, 2, 3)).save(secret)
    record = replace(records[0], images={"source": "../private.png", "strip": "../private.png"},
                     steps=[replace(s, image="../private.png") for s in records[0].steps])
    text = write_run_report(run, [record], title="tampered").read_text(encoding="utf-8")
    import base64

    assert base64.b64encode(secret.read_bytes()).decode("ascii") not in text
