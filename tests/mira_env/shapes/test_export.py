import json

import pytest

from mira_env.records import read_records
from mira_env.shapes.generator import ShapesTaskGenerator
from mira_env.tasks import load_hf_dataset, load_jsonl


def run_cli(tmp_path, *extra):
    from mira_env.train.cli import main

    return main(["export", "--out", str(tmp_path / "out"), "--num_tasks", "4", "--resolution", "48",
                 "--progress", "false", *extra])


def test_export_round_trip(tmp_path):
    assert run_cli(tmp_path, "--split", "validation") == 0
    records = read_records(tmp_path / "out")
    generator = ShapesTaskGenerator(split="validation", num_tasks=4, resolution=48)
    assert [r.id for r in records] == [generator.task_id(i) for i in range(4)]
    for record, task in zip(records, generator):
        assert record.complex_instruction == task.instruction and record.variants == list(task.variants)
        assert [s.instruction for s in record.trajectory] == list(task.atomic_instructions)
        assert record.load_source().tobytes() == task.image.tobytes()
        assert record.load_final().tobytes() == record.load_target().tobytes() == task.target_image.tobytes()
        assert len(record.metadata["step_scenes"]) == len(record.trajectory)
        assert record.metadata["step_scenes"][-1] == record.metadata["target_scene"]
        for index in range(len(record.trajectory)):
            assert record.load_step_image(index).size == (48, 48)
    assert len(load_jsonl(tmp_path / "out" / "records.jsonl")) == 4


def test_export_hf_dataset(tmp_path):
    pytest.importorskip("datasets")
    assert run_cli(tmp_path, "--hf_out", str(tmp_path / "hf")) == 0
    tasks = load_hf_dataset(tmp_path / "hf")
    records = read_records(tmp_path / "out")
    assert [t.instruction for t in tasks] == [r.complex_instruction for r in records]
    assert tasks[0].load_source().tobytes() == records[0].load_source().tobytes()
    assert json.loads(tasks[0].metadata["target_scene"]) == records[0].metadata["target_scene"]
