"""Typed episode records: reading run folders of the current and older writers, writing, clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mira_env.episodes import (SCHEMA_VERSION, EpisodeRecord, EpisodeRecordError, StepRecord, load_episodes,
                               to_jsonable)
from mira_env.errors import ConfigError

#: three lines written by `mira run --tasks 1 --group-size 1` before records had a schema_version (version 1):
#: the oracle (step images and a strip), one-shot (an editor parse failure) and the no-op baseline (no images)
FIXTURE = Path(__file__).parent / "fixtures" / "episodes_v1.jsonl"


def test_a_version_1_run_folder_reads_into_typed_records(tmp_path):
    shutil.copy(FIXTURE, tmp_path / "episodes.jsonl")
    oracle, one_shot, noop = load_episodes(tmp_path)  # a folder, or the file itself
    assert load_episodes(FIXTURE) == [oracle, one_shot, noop]
    assert oracle.key == ("oracle", "shapes-test-s0-00000", 0, 0) and oracle.task_index == 0
    assert oracle.success is True and oracle.total_return == 1.0 and oracle.num_edits == 4 and oracle.num_steps == 5
    assert oracle.final_components == {"oracle_progress": 1.0, "oracle": 1.0, "success": 1.0}
    assert oracle.images["strip"] == "strips/oracle/shapes-test-s0-00000_g0_m0.png"
    first, last = oracle.steps[0], oracle.steps[-1]
    assert isinstance(first, StepRecord) and first.t == 1 and first.valid and not first.stop
    assert first.image == "images/oracle/shapes-test-s0-00000/g0_m0/step_01.png" and first.editor_seed == 1674735537
    assert last.stop and last.instruction == "<STOP>" and last.reward_total == 1.0
    assert one_shot.success is False and one_shot.steps[0].editor_status["ok"] is False
    assert noop.images == {} and noop.steps[0].image is None and noop.num_edits == 0
    assert all(r.schema_version == SCHEMA_VERSION for r in (oracle, one_shot, noop))


def test_writing_a_version_1_record_back_changes_nothing_but_the_version():
    for line in FIXTURE.read_text().splitlines():
        old = json.loads(line)
        written = json.loads(EpisodeRecord.from_json(line).to_json())
        assert written.pop("schema_version") == SCHEMA_VERSION
        assert written == old and list(written) == list(old)  # same keys, same order, same values


def test_records_written_before_parse_error_and_with_unknown_keys_still_read():
    old = json.loads(FIXTURE.read_text().splitlines()[2])
    del old["steps"][0]["parse_error"]  # written before steps had a parse_error
    old["note"] = {"by": "a newer tool"}
    old["steps"][0]["tokens"] = 7
    record = EpisodeRecord.from_dict(old)
    assert record.steps[0].parse_error is None
    assert record.extra == {"note": {"by": "a newer tool"}} and record.steps[0].extra == {"tokens": 7}
    again = record.to_dict()
    assert again["note"] == {"by": "a newer tool"} and again["steps"][0]["tokens"] == 7


def test_a_torn_last_line_is_skipped_by_the_reader(tmp_path):
    lines = FIXTURE.read_text().splitlines()
    (tmp_path / "episodes.jsonl").write_text(lines[0] + "\n" + lines[1][:200])  # a write in progress
    (record,) = load_episodes(tmp_path)
    assert record.agent == "oracle"


def _line_error(tmp_path: Path, second_line: str) -> str:
    good = FIXTURE.read_text().splitlines()[0]
    path = tmp_path / "episodes.jsonl"
    path.write_text(good + "\n" + second_line + "\n")
    with pytest.raises(EpisodeRecordError) as raised:
        load_episodes(path)
    assert isinstance(raised.value, ConfigError)
    message = str(raised.value)
    assert message.startswith(f"{path}:2: ")
    return message[len(f"{path}:2: "):]


def test_malformed_lines_name_the_file_the_line_and_the_key(tmp_path):
    record = json.loads(FIXTURE.read_text().splitlines()[2])
    assert _line_error(tmp_path, "{not json").startswith("not JSON (")
    assert _line_error(tmp_path, "[1, 2]") == "[1, 2] (type list) is not an episode record (a JSON object)"
    missing = dict(record)
    del missing["task_id"]
    assert _line_error(tmp_path, json.dumps(missing)).startswith("not an episode record: key 'task_id' is missing (keys: ")
    del missing["steps"]
    missing["task_id"] = "t"
    assert "key 'steps' is missing" in _line_error(tmp_path, json.dumps(missing))
    assert _line_error(tmp_path, json.dumps({**record, "num_edits": "two"})) == (
        "key 'num_edits' = 'two' (type str) must be an int; fix or delete that line")
    assert _line_error(tmp_path, json.dumps({**record, "success": 1})) == (
        "key 'success' = 1 (type int) must be true or false; fix or delete that line")
    bad_step = {**record, "steps": [{**record["steps"][0], "reward": "high"}]}
    assert _line_error(tmp_path, json.dumps(bad_step)) == (
        "steps[0]: key 'reward' = 'high' (type str) must be a number; fix or delete that line")
    assert _line_error(tmp_path, json.dumps({**record, "steps": [{"action": "x"}]})).startswith(
        "steps[0]: not a step record: key 't' is missing")
    assert _line_error(tmp_path, json.dumps({**record, "schema_version": SCHEMA_VERSION + 1})) == (
        f"schema_version {SCHEMA_VERSION + 1} is newer than this mira-env reads ({SCHEMA_VERSION}); upgrade "
        f"mira-env to read this run folder")
    with pytest.raises(EpisodeRecordError, match="is not a file; pass a run folder holding episodes.jsonl"):
        load_episodes(tmp_path / "nowhere")


def test_key_access_reads_like_the_old_dicts_for_code_not_yet_converted():
    record = load_episodes(FIXTURE)[0]
    assert record["return"] == record.total_return == 1.0 and record["steps"] is record.steps
    assert record.get("success") is True and record.get("wall_s") == record.wall_s
    assert record["schema_version"] == SCHEMA_VERSION and "steps" in record and "nope" not in record
    assert record.get("nope", 3) == 3
    with pytest.raises(KeyError):
        record["nope"]
    noop_step = load_episodes(FIXTURE)[2].steps[0]
    assert "image" not in noop_step and noop_step.get("image", "none") == "none"  # as the dict had no image key
    assert noop_step["reward_errors"] == {"total": "every term has weight 0: nothing to sum"}
    assert noop_step.get("valid", False) is True


def test_to_jsonable_writes_numpy_and_non_finite_values_as_json():
    step = StepRecord(t=np.int64(1), reward=float("nan"), reward_components={"x": np.float32(0.5)},
                      editor_status={"ops": ("a", "b")})
    assert to_jsonable(step) == {**StepRecord(t=1).to_dict(), "t": 1, "reward": None,
                                 "reward_components": {"x": 0.5}, "editor_status": {"ops": ["a", "b"]}}
    record = EpisodeRecord(agent="a", task_id="t", group_index=0, member_index=0, steps=[step], total_return=np.inf)
    data = json.loads(record.to_json())
    assert data["return"] is None and data["steps"][0]["reward"] is None and data["schema_version"] == SCHEMA_VERSION
    assert EpisodeRecord.from_json(record.to_json()).steps[0].reward is None
