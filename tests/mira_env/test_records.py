"""The MIRA-Editing record format: write, read, and errors naming the record."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mira_env import TaskError
from mira_env.records import EditingRecord, TrajectoryStep, read_records, write_records
from mira_env.tasks import load_jsonl
from tests.mira_env.helpers import gradient_image


def test_round_trip_keeps_every_image(tmp_path):
    steps = [TrajectoryStep("add a hat", gradient_image(offset=10)), TrajectoryStep("make it red", gradient_image(offset=20))]
    record = EditingRecord(id="r1", complex_instruction="add a red hat", source_image=gradient_image(),
                           trajectory=steps, variants=["put on a red hat"], target_image=gradient_image(offset=30),
                           metadata={"difficulty": 2})
    path = write_records([record], tmp_path)
    (loaded,) = read_records(path)
    assert loaded.id == "r1" and loaded.variants == ["put on a red hat"] and loaded.metadata == {"difficulty": 2}
    assert [s.instruction for s in loaded.trajectory] == ["add a hat", "make it red"]
    assert np.array_equal(np.asarray(loaded.load_step_image(1)), np.asarray(steps[1].image))
    assert np.array_equal(np.asarray(loaded.load_final()), np.asarray(steps[1].image))
    assert np.array_equal(np.asarray(loaded.load_target()), np.asarray(gradient_image(offset=30)))
    (task,) = load_jsonl(path)  # the records file is a task file too
    assert task.atomic_instructions == ("add a hat", "make it red") and task.instruction == "add a red hat"
    assert task.load_source().size == (48, 40)


@pytest.mark.parametrize("raw, message", [
    ({"id": "r", "source_image": "s.png"}, "field 'complex_instruction' must be a non-empty string"),
    ({"id": "r", "complex_instruction": "c", "source_image": "s.png", "trajectory": {"a": 1}},
     "field 'trajectory' must be a list"),
    ({"id": "r", "complex_instruction": "c", "source_image": "s.png", "trajectory": [{"image": "x.png"}]},
     r"trajectory\[0\] must be an object with a string 'instruction'"),
    ({"id": "r", "complex_instruction": "c", "source_image": "s.png", "variants": "v"},
     "field 'variants' must be a list of strings"),
])
def test_malformed_records_name_file_and_line(tmp_path, raw, message):
    (tmp_path / "records.jsonl").write_text(json.dumps(raw) + "\n")
    with pytest.raises(TaskError, match=rf"records.jsonl:1: {message}"):
        read_records(tmp_path)


def test_missing_step_image_names_the_record(tmp_path):
    raw = {"id": "r9", "complex_instruction": "c", "source_image": "s.png",
           "trajectory": [{"instruction": "a", "image": "gone.png"}]}
    (tmp_path / "records.jsonl").write_text(json.dumps(raw) + "\n")
    (record,) = read_records(tmp_path)
    with pytest.raises(TaskError, match=r"record 'r9' \(trajectory\[0\].image\): image file .* does not exist"):
        record.load_step_image(0)


@pytest.mark.parametrize("record_id", ["../../escape", "/abs/path", "x" * 300, "..", "把猫/变红", "a\\b"])
def test_ids_never_write_outside_the_folder_and_are_bounded(tmp_path, record_id):
    from PIL import Image

    from mira_env.records import EditingRecord, read_records, write_records

    folder = tmp_path / "data"
    record = EditingRecord(id=record_id, complex_instruction="go", source_image=Image.new("RGB", (4, 4), "red"))
    write_records([record], folder)
    written = [p for p in tmp_path.rglob("*.png")]
    assert written and all(folder in p.parents for p in written)
    assert all(len(part) <= 80 for p in written for part in p.relative_to(folder).parts)
    (again,) = read_records(folder)
    assert again.id == record_id and again.load_source().size == (4, 4)
