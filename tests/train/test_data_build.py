"""``mira data build`` end to end: a MagicBrush-layout fixture -> records -> ``mira train sft``; candidate
ranking with a real reward term; leakage against a benchmark copy."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from mira_env.records import read_records, record_to_json
from mira_env.train.cli import main
from mira_env.train.data import build_sft_samples, load_records
from tests.chat_server import ChatServer
from tests.mira_env import benchmark_fixtures as fx


@pytest.mark.slow
def test_magicbrush_fixture_to_records_that_sft_trains_on(tmp_path):
    sessions = fx.magicbrush_turn_rows_file(tmp_path / "mb")
    out = tmp_path / "records"
    assert main(["data", "build", "--sessions", str(sessions), "--out", str(out), "--orders", "ordered,shuffled",
                 "--progress", "false"]) == 0
    records = read_records(out)
    assert len(records) == 4
    lines = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert [record_to_json(r, out) for r in records] == lines  # the writer round-trips
    # the records load with train/data.py's public loader, no conversion, in both sample formats
    assert [r.id for r in load_records(str(out))] == [r.id for r in records]
    samples = build_sft_samples(str(out))
    assert len(samples) == 2 * 3 + 2 * 2  # (n + 1) samples per record: 2-turn session x 2 orders, 1-turn x 2
    assert [s["kind"] for s in samples if s["record_id"] == "30-reference-shuffled"] == ["start", "continue", "stop"]
    assert samples[0]["completion"].startswith("<edit>")
    assert len(build_sft_samples(str(out), format="multi_turn")) == len(samples)
    # and `mira train sft` trains on them
    ckpt = tmp_path / "sft"
    assert main(["train", "sft", "--tiny", "qwen2_5_vl", "--records", str(out), "--output_dir", str(ckpt),
                 "--max_steps", "1", "--use_cpu", "true", "--save_strategy", "no"]) == 0
    assert (ckpt / "config.json").is_file() or any(ckpt.rglob("*.safetensors"))


def _sessions_with_candidates(tmp_path):
    """One session whose own turn images are noise, and two candidates: one that keeps the source."""
    folder = tmp_path / "s"
    folder.mkdir()
    source = fx.image(1)
    source.save(folder / "source.png")
    fx.image(2).save(folder / "turn.png")
    source.save(folder / "keep.png")
    fx.image(3).save(folder / "other.png")
    row = {"id": "s1", "source_image": "source.png", "turns": [{"instruction": "brighten it", "image": "turn.png"}],
           "candidates": [{"name": "faithful", "steps": [{"instruction": "brighten it", "image": "keep.png"}]},
                          {"name": "broken", "steps": [{"instruction": "brighten it", "image": "missing.png"}]},
                          {"name": "other", "steps": [{"instruction": "brighten it", "image": "other.png"}]}]}
    path = folder / "sessions.jsonl"
    path.write_text(json.dumps(row) + "\n")
    return path


def test_candidates_are_ranked_with_a_reward_and_the_top_k_kept(tmp_path):
    path = _sessions_with_candidates(tmp_path)
    out = tmp_path / "ranked"
    assert main(["data", "build", "--sessions", str(path), "--out", str(out), "--reward", "l1:-1", "--top_k", "2",
                 "--progress", "false"]) == 0
    records = read_records(out)
    assert [r.metadata["candidate"] for r in records] == ["faithful", records[1].metadata["candidate"]]
    assert [r.metadata["rank"] for r in records] == [1, 2]
    assert records[0].metadata["score"] == pytest.approx(0.0) and records[1].metadata["score"] < 0
    assert records[0].metadata["reward"] == "reward:l1:-1"
    assert fx.tag(records[0].load_target()) == 2  # the session's own last image stays the target
    summary = json.loads((out / "build_summary.json").read_text())
    assert summary["candidates_scored"] == 3 and summary["candidates_kept"] == 2
    assert summary["candidates_dropped"] == {"below_top_k": 1, "unreadable_image": 1}


def test_without_a_reward_only_the_reference_is_kept(tmp_path):
    out = tmp_path / "plain"
    assert main(["data", "build", "--sessions", str(_sessions_with_candidates(tmp_path)), "--out", str(out),
                 "--progress", "false"]) == 0
    (record,) = read_records(out)
    assert record.metadata["candidate"] == "reference" and record.metadata["score"] is None
    assert json.loads((out / "build_summary.json").read_text())["candidates_dropped"] == {
        "not_ranked": 2, "unreadable_image": 1}


def test_leaking_sessions_are_dropped_against_a_benchmark_copy(tmp_path, capsys):
    sessions = fx.magicbrush_turn_rows_file(tmp_path / "mb")
    release = fx.write_magicbrush_release(tmp_path / "release")
    out = tmp_path / "out"
    assert main(["data", "build", "--sessions", str(sessions), "--out", str(out), "--eval", f"magicbrush={release}",
                 "--progress", "false"]) == 0
    summary = json.loads((out / "build_summary.json").read_text())
    assert summary["sessions_dropped"] == {"leak": 2} and summary["records_written"] == 0
    assert main(["data", "build", "--sessions", str(sessions), "--out", str(tmp_path / "strict"), "--eval",
                 f"magicbrush={release}", "--on_leak", "error", "--progress", "false"]) == 2
    assert "leaks into the evaluation set" in capsys.readouterr().err


def test_bad_flags_fail_with_the_reason(tmp_path, capsys):
    sessions = fx.magicbrush_turn_rows_file(tmp_path / "mb")
    assert main(["data", "build", "--sessions", str(sessions), "--out", str(tmp_path / "o"), "--eval", "magicbrush",
                 "--progress", "false"]) == 2
    assert "--eval 'magicbrush': expected NAME=PATH" in capsys.readouterr().err
    assert main(["data", "build", "--sessions", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o2")]) == 2
    assert "nope.jsonl' does not exist" in capsys.readouterr().err


def _brightness_judge(body):
    """A stand-in VLM judge: scores the LAST image of a request by its mean brightness."""
    urls = [part["image_url"]["url"] for message in body["messages"] if isinstance(message["content"], list)
            for part in message["content"] if part.get("type") == "image_url"]
    edited = Image.open(io.BytesIO(base64.b64decode(urls[-1].split(",", 1)[1])))
    score = round(float(np.asarray(edited.convert("L")).mean()) / 25.5, 2)
    return json.dumps({"reasoning": "brightness", "score": [score, score]})


def test_candidates_are_ranked_by_a_judge_composite(tmp_path):
    with ChatServer(answer=_brightness_judge) as judge:
        folder = tmp_path / "s"
        folder.mkdir()
        for name, level in (("source", 100), ("turn", 120), ("bright", 240), ("dark", 10)):
            Image.new("RGB", (16, 16), (level, level, level)).save(folder / f"{name}.png")
        row = {"id": "s1", "source_image": "source.png", "turns": [{"instruction": "brighten it", "image": "turn.png"}],
               "candidates": [{"name": n, "steps": [{"instruction": "brighten it", "image": f"{n}.png"}]}
                              for n in ("dark", "bright")]}
        (folder / "sessions.jsonl").write_text(json.dumps(row) + "\n")
        reward = tmp_path / "judge.yaml"
        reward.write_text("terms:\n  - {name: judge_sc, weight: 0}\n  - {name: judge_pq, weight: 0}\n"
                          "  - {name: judge_overall, weight: 1}\n"
                          f"judge: {{backend: openai, model: judge, base_url: '{judge.base_url}', "
                          "api_key_env: null, max_retries: 0}\n")
        out = tmp_path / "out"
        assert main(["data", "build", "--sessions", str(folder / "sessions.jsonl"), "--out", str(out), "--reward",
                     str(reward), "--progress", "false"]) == 0
    (record,) = read_records(out)
    assert record.metadata["candidate"] == "bright" and record.metadata["reward"] == "reward:judge.yaml"
    assert record.metadata["score"] == pytest.approx(round(240 / 25.5, 2))  # overall = sqrt(SC * PQ), SC = PQ here
    assert len(judge.requests) == 6  # 3 candidates x (SC, PQ), one composite call
