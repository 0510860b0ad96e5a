"""``mira eval``: agents x editors x task set -> metrics table (CSV, JSON) and a side-by-side report."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from mira_env.agents.commands.evaluate import MergedReward, build_metric_reward, shapes_noise
from mira_env.agents.rollout import EPISODES_FILE
from mira_env import RewardOutput
from tests.mira_env.helpers import write_magicbrush
from mira_env.train.cli import build_parser, main as mira


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_eval_compares_oracle_one_shot_random_and_a_tiny_vlm_on_the_shapes_world(tmp_path, tiny_vlm_paths, capsys):
    vlm = f"vlm:{tiny_vlm_paths['qwen2_5_vl']}"
    out = tmp_path / "eval"
    assert mira(["eval", "--agents", f"oracle,one-shot,random,{vlm}", "--tasks", "3", "--out", str(out),
                 "--vlm_options", '{"max_new_tokens": 6}', "--progress", "false"]) == 0
    stdout = capsys.readouterr().out
    rows = read_csv(out / "metrics.csv")
    assert [row["agent"] for row in rows] == ["oracle", "one-shot", "random", vlm]
    assert {row["editor"] for row in rows} == {"shapes"}
    assert list(rows[0])[:5] == ["agent", "editor", "episodes", "success_rate", "oracle"]
    assert "l1" in rows[0] and "clip_t" not in rows[0]
    records = [json.loads(line) for line in (out / "editors" / "shapes" / EPISODES_FILE).read_text().splitlines()]
    for row in rows:
        mine = [r for r in records if r["agent"] == row["agent"]]
        assert int(row["episodes"]) == len(mine) == 3
        assert float(row["success_rate"]) == pytest.approx(np.mean([r["success"] for r in mine]))
        assert float(row["oracle"]) == pytest.approx(np.mean([r["final_components"]["oracle"] for r in mine]))
        assert float(row["l1"]) == pytest.approx(np.mean([r["final_components"]["l1"] for r in mine]))
    assert float(rows[0]["success_rate"]) == 1.0
    # the tiny VLM's random answers are recorded raw, whatever they parse to
    vlm_steps = [s for r in records if r["agent"] == vlm for s in r["steps"]]
    assert all(isinstance(s["raw_output"], str) for s in vlm_steps)
    data = json.loads((out / "metrics.json").read_text())
    assert data["columns"] == list(rows[0]) and len(data["rows"]) == 4
    assert "clip_t omitted: no CLIP weights (give --clip_pretrained <tag or checkpoint>, or --tiny_reward_models " \
           "for a plumbing run)" in data["notes"]
    assert "note: lpips omitted" in stdout and stdout.splitlines()[0].split()[:3] == ["agent", "editor", "episodes"]
    report = (out / "report.html").read_text(encoding="utf-8")
    # per task: source, target, and one final image per agent, side by side
    assert report.count("<img") == 3 * (2 + 4)
    assert report.count(f"<b>{vlm}</b>") == 3
    assert (out / "editors" / "shapes" / "report.html").is_file()


def test_eval_on_a_task_file_with_tiny_metric_models_and_two_editors(tmp_path, capsys):
    path = write_magicbrush(tmp_path)
    out = tmp_path / "eval"
    assert mira(["eval", "--task_file", str(path), "--editors", "identity", "--tiny_editor", "--agents", "one-shot",
                 "--size", "32", "--metrics", "clip_t,clip_i,lpips,l1", "--tiny_reward_models", "--out", str(out),
                 "--progress", "false"]) == 0
    rows = read_csv(out / "metrics.csv")
    assert [(row["agent"], row["editor"]) for row in rows] == [("one-shot", "identity"),
                                                                ("one-shot", "tiny-instruct-pix2pix")]
    identity, tiny = rows
    for row in rows:
        for metric in ("clip_t", "clip_i", "lpips", "l1"):
            assert row[metric] != "" and np.isfinite(float(row[metric]))
        assert "success_rate" not in row and "oracle" not in row  # unknown outside the shapes world
    # the identity editor changes nothing: no pixel distance to the source; a random diffusion model does
    assert float(identity["l1"]) == 0.0 < float(tiny["l1"])
    report = (out / "report.html").read_text(encoding="utf-8")
    assert report.count("<b>one-shot @ identity</b>") == 2 and report.count("<b>one-shot @ tiny-instruct-pix2pix</b>") == 2
    assert report.count("<img") == 2 * (2 + 2)  # source, target, two columns
    assert "note: clip_t: tiny random CLIP (plumbing only, not a real score)" in capsys.readouterr().out


def test_merged_reward_keeps_the_primary_total_and_adds_metric_components():
    class Fixed:
        def __init__(self, total, components, errors=None):
            self.output = RewardOutput(total, components, errors or {})

        def score(self, items):
            return [self.output for _ in items]

    merged = MergedReward(Fixed(0.5, {"oracle": 0.5, "success": 0.0}), Fixed(0.0, {"l1": 0.1}, {"clip_t": "no"}))
    (output,) = merged.score([object()])
    assert output.total == 0.5 and dict(output.components) == {"l1": 0.1, "oracle": 0.5, "success": 0.0}
    assert dict(output.errors) == {"clip_t": "no"}
    (alone,) = MergedReward(None, Fixed(0.0, {"l1": 0.2})).score([object()])
    assert alone.total == 0.0 and dict(alone.components) == {"l1": 0.2}


def test_default_metrics_without_models_are_l1_only_with_notes():
    reward, notes = build_metric_reward(None)
    assert reward.names == ["l1"]
    assert notes[0] == "judge_sc omitted: no judge (give --judge_model, with --judge_base_url for an endpoint)"
    assert len(notes) == 6


def test_settings_from_flags():
    parser = build_parser()
    known, _ = parser.parse_known_args(["eval"])
    args = _eval_args(["--tiny_vlm", "--agents", "oracle", "--editors", "shapes", "shapes:0.3",
                       "--editor_options", '{"num_inference_steps": 4}'])
    settings, options, editors = settings_from_args(args)
    assert settings.agents == ["oracle", "vlm:tiny"]
    assert editors == {"shapes": ("shapes", {"num_inference_steps": 4}),
                       "shapes:0.3": ("shapes:0.3", {"num_inference_steps": 4})}
    assert shapes_noise("shapes:0.3") == 0.3 and shapes_noise("identity") is None
    assert known.command == "eval" and options.metrics is None


def settings_from_args(args):
    from mira_env.train.commands.eval import resolve

    settings, options, editors, _ = resolve(args)
    return settings, options, editors


def _eval_args(argv):
    import argparse

    from mira_env.train.commands import eval as command

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return parser.parse_args(argv)


def test_eval_steps_default_to_the_budget_the_policy_was_trained_with(tmp_path):
    """A GRPO checkpoint trained with 3 tool turns is evaluated with 3 steps unless --max_steps says otherwise."""
    from mira_env.agents.prompt import POLICY_RECORD, policy_record
    from mira_env.errors import ConfigError

    for name, budget in (("a", 3), ("b", 3), ("c", 4)):
        (tmp_path / name).mkdir()
        (tmp_path / name / POLICY_RECORD).write_text(json.dumps(policy_record("multi_turn", budget, None)))
    settings, _, _ = settings_from_args(_eval_args(["--agents", f"oracle,vlm:{tmp_path / 'a'},vlm:{tmp_path / 'b'}"]))
    assert settings.max_steps == 3
    settings, _, _ = settings_from_args(_eval_args(["--agents", f"vlm:{tmp_path / 'a'}", "--max_steps", "7"]))
    assert settings.max_steps == 7
    settings, _, _ = settings_from_args(_eval_args(["--agents", "oracle,vlm:Qwen/Qwen2.5-VL-3B-Instruct"]))
    assert settings.max_steps is None  # no record (a hub id): the env's default
    with pytest.raises(ConfigError) as err:
        settings_from_args(_eval_args(["--agents", f"vlm:{tmp_path / 'a'},vlm:{tmp_path / 'c'}"]))
    assert str(err.value) == (f"the policies were trained with different edit budgets {{'vlm:{tmp_path / 'a'}': 3, "
                              f"'vlm:{tmp_path / 'c'}': 4}}; pass --max_steps N to evaluate them under one step limit")


@pytest.mark.parametrize("argv, message", [
    (["--metrics", "clip_t,sharpness"], "unknown metric(s) ['sharpness']; known terms: "),
    (["--editors", "shapes:lots"], "editor spec 'shapes:lots': write shapes:<noise in [0, 1]>, e.g. shapes:0.2"),
    (["--task_file", "{tasks}", "--editors", "shapes"], "editor 'shapes' edits shapes-world scenes only; with "
                                                        "--task_file use identity, a diffusers preset, a hub id or a "
                                                        "local path"),
    (["--tasks", "-1"], "tasks=-1 (type int) must be a positive int or None"),
])
def test_bad_eval_arguments_are_named(tmp_path, capsys, argv, message):
    path = write_magicbrush(tmp_path, 1)
    argv = [a.replace("{tasks}", str(path)) for a in argv]
    assert mira(["eval", "--out", str(tmp_path / "e"), "--progress", "false", "--agents", "one-shot", *argv]) == 2
    assert capsys.readouterr().err.strip().startswith(f"mira eval: error: {message}")


def test_a_configured_metric_no_episode_could_score_gets_a_note_with_the_reason():
    from mira_env.agents.commands.evaluate import unscored_notes

    class Names:
        names = ["judge_sc", "l1"]

    from mira_env.episodes import EpisodeRecord

    records = [EpisodeRecord.from_dict({
        "agent": "a", "task_id": "t", "group_index": 0, "member_index": 0, "final_components": {"judge_sc": None, "l1": 0.1},
        "steps": [{"t": 1, "reward_errors": {}}, {"t": 2, "reward_errors": {"judge_sc": "unparseable judge answer"}}]})]
    assert unscored_notes(Names(), {"identity": records}) == [
        "judge_sc on identity: no episode could be scored (unparseable judge answer)"]


def test_rerunning_an_eval_folder_with_other_settings_is_refused_not_reused(tmp_path, capsys):
    """Issue 12, item 3: another --max_steps (or task file) used to reuse the old episodes silently."""
    out = tmp_path / "eval"
    base = ["eval", "--agents", "oracle", "--tasks", "2", "--out", str(out), "--progress", "false"]
    assert mira(base) == 0
    saved = json.loads((out / "run.json").read_text())
    assert saved["max_steps"] == 10 and saved["tasks"] == 2 and saved["agents"] == ["oracle"]
    capsys.readouterr()
    assert mira(base + ["--max_steps", "3"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"mira eval: error: run folder {str(out)!r} holds results made with other settings (max_steps=10 -> 3); "
        f"use the same settings to resume, pass --restart to clear it and start over, or use another output folder")
    assert mira(base + ["--max_steps", "3", "--restart"]) == 0
    records = [json.loads(line) for line in (out / "editors" / "shapes" / EPISODES_FILE).read_text().splitlines()]
    assert len(records) == 2 and all(r["num_steps"] <= 3 for r in records)
    # a task file that changed under the same name is noticed through its fingerprint
    (tmp_path / "mb").mkdir()
    tasks = write_magicbrush(tmp_path / "mb", count=1)
    other = ["eval", "--agents", "one-shot", "--task_file", str(tasks), "--out", str(tmp_path / "e2"), "--progress", "false"]
    assert mira(other) == 0
    with open(tasks, "a", encoding="utf-8") as handle:
        handle.write("\n")
    capsys.readouterr()
    assert mira(other) == 2
    assert "task_file_fingerprint=" in capsys.readouterr().err
