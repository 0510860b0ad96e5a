"""``mira run``: the main job, end to end through the real CLI entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mira_env.agents.rollout import EPISODES_FILE, episode_key
from mira_env.agents.commands import SHAPES_DEFAULT_TASKS
from mira_env.train.cli import main as mira

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """``mira run`` with no arguments, in a fresh working directory (a real subprocess)."""
    cwd = tmp_path_factory.mktemp("cwd")
    done = subprocess.run([sys.executable, "-m", "mira_env.train.cli", "run"], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = (cwd / "runs").iterdir()
    return run, done.stdout


def test_mira_run_without_arguments_writes_trajectories_strips_and_a_report(default_run):
    run, stdout = default_run
    records = [json.loads(line) for line in (run / EPISODES_FILE).read_text().splitlines()]
    # default: oracle, one-shot, random on SHAPES_DEFAULT_TASKS (8) shapes tasks, one group of G=2 each
    assert {r["agent"] for r in records} == {"oracle", "one-shot", "random"}
    assert len({episode_key(r) for r in records}) == len(records) == 3 * SHAPES_DEFAULT_TASKS * 2 == 48
    for record in records:
        strip = Image.open(run / record["images"]["strip"])
        assert strip.width > strip.height * (record["num_steps"] + 1)  # source + one frame per step
        assert record["final_components"].keys() >= {"oracle", "success"}
    # the scripted oracle on a noiseless editor reaches every target; one-shot's single edit cannot parse
    oracle = [r for r in records if r["agent"] == "oracle"]
    assert all(r["success"] and r["steps"][-1]["stop"] for r in oracle)
    one_shot = [r for r in records if r["agent"] == "one-shot"]
    assert all(r["num_steps"] == 2 and r["steps"][0]["instruction"] == r["instruction"] for r in one_shot)
    report = (run / "report.html").read_text(encoding="utf-8")
    assert report.count("<img") >= sum(r["num_edits"] + 2 for r in records)
    assert "target" in report
    summary = json.loads((run / "summary.json").read_text())
    lines = stdout.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("name")))
    table = {line.split()[0]: line.split() for line in lines[header + 2: header + 5]}
    for row in summary:
        assert table[row["name"]][2] == f"{row['success_rate']:.3f}"
    assert [row["name"] for row in summary] == ["oracle", "one-shot", "random"]
    assert summary[0]["success_rate"] == 1.0 > summary[2]["success_rate"]
    assert f"report:   {Path('runs') / run.name / 'report.html'}" in lines


def test_rerunning_into_the_same_folder_resumes_without_replaying(tmp_path, capsys):
    args = ["run", "--agents", "oracle,random", "--tasks", "2", "--group_size", "2", "--out", str(tmp_path / "r"),
            "--progress", "false", "--images", "strip"]
    assert mira(args) == 0
    first = (tmp_path / "r" / EPISODES_FILE).read_text()
    assert mira(args) == 0
    assert (tmp_path / "r" / EPISODES_FILE).read_text() == first
    assert len(first.splitlines()) == 2 * 2 * 2


def test_a_new_agent_joins_an_existing_run_folder(tmp_path):
    base = ["run", "--tasks", "2", "--group_size", "2", "--out", str(tmp_path / "r"), "--progress", "false"]
    assert mira(base + ["--agents", "oracle"]) == 0
    assert mira(base + ["--agents", "oracle,one-shot"]) == 0
    records = [json.loads(line) for line in (tmp_path / "r" / EPISODES_FILE).read_text().splitlines()]
    assert [r["agent"] for r in records] == ["oracle"] * 4 + ["one-shot"] * 4
    assert json.loads((tmp_path / "r" / "run.json").read_text())["agents"] == ["oracle", "one-shot"]


def test_changed_settings_on_a_run_folder_are_refused(tmp_path, capsys):
    out = str(tmp_path / "r")
    assert mira(["run", "--agents", "oracle", "--tasks", "1", "--group_size", "1", "--out", out, "--progress", "false"]) == 0
    capsys.readouterr()
    assert mira(["run", "--agents", "oracle", "--tasks", "1", "--group_size", "1", "--out", out, "--progress", "false",
                 "--seed", "5"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"mira run: error: run folder {out!r} holds results made with other settings (seed=0 -> 5); use the same "
        f"settings to resume, pass --restart to clear it and start over, or use another output folder")
    # --restart clears the results and plays again with the new settings
    assert mira(["run", "--agents", "oracle", "--tasks", "1", "--group_size", "1", "--out", out, "--progress", "false",
                 "--seed", "5", "--restart"]) == 0
    assert json.loads((Path(out) / "run.json").read_text())["seed"] == 5
    (record,) = [json.loads(line) for line in (Path(out) / EPISODES_FILE).read_text().splitlines()]
    assert record["group_seed"] != 0


def test_a_folder_with_episodes_but_no_run_json_is_refused(tmp_path, capsys):
    out = tmp_path / "r"
    argv = ["run", "--agents", "oracle", "--tasks", "1", "--group_size", "1", "--out", str(out), "--progress", "false"]
    assert mira(argv) == 0
    (out / "run.json").unlink()
    capsys.readouterr()
    assert mira(argv + ["--max_steps", "3"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"mira run: error: run folder {str(out)!r} holds results but it has no settings record (run.json), so what "
        f"made them is unknown; pass --restart to clear it and start over, or use another output folder")


def test_run_json_records_resolved_settings(tmp_path):
    out = tmp_path / "r"
    assert mira(["run", "--agents", "oracle", "--group_size", "1", "--out", str(out), "--progress", "false"]) == 0
    saved = json.loads((out / "run.json").read_text())
    assert saved["tasks"] == SHAPES_DEFAULT_TASKS and saved["max_steps"] == 10 and saved["task_file_fingerprint"] is None
    assert saved["task_generator"] == "mira-shapes/v3"  # a folder of the old task stream is refused, not mixed


def test_a_second_process_on_the_same_folder_is_refused(tmp_path, capsys):
    from mira_env.runs import RunLock

    out = tmp_path / "r"
    code = ("import sys, time; from mira_env.runs import RunLock; RunLock(sys.argv[1]).acquire(); "
            "print('locked', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert mira(["run", "--agents", "oracle", "--tasks", "1", "--group_size", "1", "--out", str(out),
                     "--progress", "false"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"mira run: error: run folder {str(out)!r} is in use by pid {holder.pid} on ")
        assert err.endswith("; wait for that run to finish or use another output folder")
    finally:
        holder.kill()
        holder.wait()
    with RunLock(out):  # the kernel dropped the dead holder's lock
        pass
    assert not (out / EPISODES_FILE).exists()


@pytest.mark.parametrize("argv, message", [
    (["--agents", "oracle,oracle"], "agent spec 'oracle' is given twice; list every agent once"),
    (["--agents", "genius"], "agent spec 'genius' (type str) is not one of: oracle, one-shot, random, no-op, "
                             "vlm:<hub id or local path>, vlm:tiny, api:<model>@<base_url>, pkg.module:Class, or an "
                             "agent plugin (entry-point group 'mira_env.agents'; installed: none)"),
    (["--agents", "api:gpt"], "agent spec 'api:gpt' is not api:<model>@<base_url>; write e.g. "
                              "api:Qwen/Qwen2.5-VL-7B-Instruct@http://localhost:8000/v1"),
    (["--editor", "identity"], "--editor 'identity' needs --task_file; the shapes world uses its own editor "
                               "(set its noise with --noise)"),
    (["--task_file", "{tasks}"], "--task_file needs --editor (identity, a diffusers preset, a hub id or a local path)"),
    (["--tasks", "0"], "tasks=0 (type int) must be a positive int or None"),
    (["--max_steps", "0"], "max_steps=0 (type int) must be a positive int or None"),
])
def test_bad_arguments_are_named(tmp_path, capsys, argv, message):
    tasks = tmp_path / "tasks.jsonl"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(tmp_path / "a.png")
    tasks.write_text(json.dumps({"id": "a", "instruction": "x", "image": "a.png"}) + "\n")
    argv = [a.replace("{tasks}", str(tasks)) for a in argv]
    assert mira(["run", "--out", str(tmp_path / "r"), "--progress", "false", *argv]) == 2
    assert capsys.readouterr().err.strip() == f"mira run: error: {message}"


def test_a_task_file_with_a_real_editor_runs_one_shot(tmp_path):
    """A MagicBrush-shaped JSONL (source image, instruction, target) with the identity editor."""
    rng = np.random.default_rng(0)
    for name in ("s", "t"):
        Image.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)).save(tmp_path / f"{name}.png")
    (tmp_path / "tasks.jsonl").write_text(json.dumps({"id": "mb-1", "source_img": "s.png", "image": "s.png",
                                                      "instruction": "add a hat", "target_img": "t.png",
                                                      "target": "t.png"}) + "\n")
    out = tmp_path / "r"
    assert mira(["run", "--task_file", str(tmp_path / "tasks.jsonl"), "--editor", "identity", "--agents",
                 "one-shot", "--group_size", "1", "--size", "32", "--out", str(out), "--progress", "false"]) == 0
    (record,) = [json.loads(line) for line in (out / EPISODES_FILE).read_text().splitlines()]
    assert record["steps"][0]["instruction"] == "add a hat" and record["success"] is None
    index = json.loads((out / "tasks.json").read_text())
    assert Image.open(out / index["mb-1"]["target"]).size == (32, 32)


def test_a_run_that_failed_before_any_episode_can_be_rerun_with_other_settings(tmp_path, capsys):
    Image.fromarray(np.full((8, 8, 3), 7, np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "t.jsonl").write_text(json.dumps({"id": "a", "instruction": "x", "image": "a.png"}) + "\n")
    base = ["run", "--task_file", str(tmp_path / "t.jsonl"), "--editor", "identity", "--agents", "one-shot",
            "--group_size", "1", "--out", str(tmp_path / "r"), "--progress", "false"]
    assert mira(base + ["--size", "0"]) == 2
    assert capsys.readouterr().err.strip() == "mira run: error: height=0 (type int) must be a positive int"
    assert not (tmp_path / "r").exists()  # a failed first run leaves no half-written folder
    assert mira(base + ["--size", "16"]) == 0
    assert len((tmp_path / "r" / EPISODES_FILE).read_text().splitlines()) == 1


class _LeakyEditor:
    """An editor whose errors echo the API key, as a misbehaving server does."""

    def __init__(self, secret):
        from mira_env import EditorInfo

        self.secret = secret
        self.info = EditorInfo(name="leaky")

    def edit(self, images, instructions, seeds):
        raise RuntimeError(f"401 from https://user:{self.secret}@editor.example/v1: invalid key {self.secret}")


def test_a_registered_secret_in_an_error_reaches_no_file_and_no_console(tmp_path, capsys):
    from mira_env.agents.baselines import OneShotAgent
    from mira_env.agents.report import summarize, write_run_report
    from mira_env.agents.rollout import EpisodeStore, RolloutConfig, RolloutEngine, plan_groups
    from mira_env.env import EditEnv
    from mira_env.redact import clear_secrets, register_secret
    from mira_env.runs import write_json
    from mira_env.tasks.task import Task
    from mira_env.vector import BatchedEditEnv

    secret = "Zq8-registered-secret-41"
    register_secret(secret)
    try:
        env = EditEnv(editor=_LeakyEditor(secret), tasks=[Task(id="t", instruction="add a hat",
                                                               image=Image.new("RGB", (16, 16), "gray"))],
                      height=16, width=16, max_steps=2)
        venv = BatchedEditEnv(1, env_fn=lambda: env)
        config = RolloutConfig(group_size=1, progress=False)
        out = tmp_path / "run"
        with EpisodeStore(out) as store:
            (record,) = RolloutEngine(venv, OneShotAgent(), config, store).run(plan_groups(venv.tasks, config))
        # the env redacts the error where it becomes data (info, records), and every writer redacts again
        assert record["steps"][0]["editor_error"] == ("RuntimeError: 401 from https://***@editor.example/v1: "
                                                      "invalid key ***")
        write_run_report(out, [record], title="leak check")
        write_json(out / "summary.json", summarize([record]))
        files = [p for p in out.rglob("*") if p.is_file()]
        assert {p.name for p in files} >= {"episodes.jsonl", "report.html", "summary.json"}
        for path in files:  # no file holds it
            assert secret.encode() not in path.read_bytes(), path
        saved = json.loads((out / "episodes.jsonl").read_text())
        assert saved["steps"][0]["editor_error"] == "RuntimeError: 401 from https://***@editor.example/v1: invalid key ***"
        # the console: one redacted error line
        assert mira(["run", "--agents", f"api:gpt@https://user:{secret}@host/v1", "--agents", "nope-" + secret,
                     "--out", str(tmp_path / "r2"), "--progress", "false"]) == 2
        captured = capsys.readouterr()
        assert secret not in captured.err + captured.out
        assert captured.err.count("\n") == 1 and captured.err.startswith("mira run: error: ")
    finally:
        clear_secrets()
