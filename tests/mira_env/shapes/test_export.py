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


def test_noisy_export_keeps_ignored_attempts_and_re_issues_them(tmp_path, capsys):
    assert run_cli(tmp_path, "--num_tasks", "24", "--split", "train", "--difficulty", "1", "--noise_ignore", "0.4",
                   "--noise_seed", "3", "--max_steps", "3") == 0
    printed = capsys.readouterr().out
    records = read_records(tmp_path / "out")
    generator = ShapesTaskGenerator(split="train", num_tasks=24, resolution=48, difficulty=1)
    tasks = {generator.task_id(i): generator[i] for i in range(24)}
    skipped = 24 - len(records)
    assert f"wrote {len(records)} records" in printed
    assert skipped > 0 and f"skipped {skipped} tasks" in printed  # P(2 of 3 ignored) at 0.4 is not small
    retried = 0
    for record in records:
        task = tasks[record.id]
        ignored = record.metadata["ignored_steps"]
        instructions = [s.instruction for s in record.trajectory]
        assert len(instructions) <= 3
        # the executed edits are the program with each ignored attempt repeated right after it
        assert [t for i, t in enumerate(instructions) if i not in ignored] == list(task.atomic_instructions)
        images = [record.load_source()] + [record.load_step_image(i) for i in range(len(instructions))]
        for i in range(len(instructions)):
            unchanged = images[i + 1].tobytes() == images[i].tobytes()
            assert unchanged == (i in ignored), (record.id, i)
            if i in ignored:
                assert instructions[i + 1] == instructions[i]
        assert record.metadata["step_scenes"][-1] == record.metadata["target_scene"]
        assert record.load_final().tobytes() == task.target_image.tobytes()
        retried += bool(ignored)
    assert retried > 0


def test_noisy_export_is_seeded_and_its_retries_become_sft_targets(tmp_path):
    from mira_env.shapes.export import iter_oracle_records
    from mira_env.shapes.noise import EditorNoise
    from mira_env.train.data import build_sft_samples

    generator = ShapesTaskGenerator(split="train", num_tasks=16, resolution=48, difficulty=1)

    def export(seed):
        return [([s.instruction for s in r.trajectory], r.metadata["ignored_steps"])
                for r in iter_oracle_records(generator, progress=False, noise=EditorNoise(ignore=0.3, seed=seed))]

    first = export(1)
    assert first == export(1) and first != export(2)
    assert len(first) == 16  # no max_steps: every ignored edit is retried until it is applied
    records = list(iter_oracle_records(generator, progress=False, noise=EditorNoise(ignore=0.3, seed=1)))
    record = next(r for r in records if r.metadata["ignored_steps"])
    step = record.metadata["ignored_steps"][0]
    samples = build_sft_samples([record], format="multi_turn", system_prompt="", max_steps=8)
    retry = next(s for s in samples if s["step"] == step + 1)
    assert retry["completion"] == samples[step]["completion"]  # after the unchanged image: the same edit again


def test_noisy_export_refuses_what_a_retry_cannot_fix(tmp_path, capsys):
    from mira_env.errors import ConfigError
    from mira_env.shapes.export import RetryBudgetError, iter_oracle_records
    from mira_env.shapes.noise import EditorNoise

    generator = ShapesTaskGenerator(split="train", num_tasks=16, resolution=48, difficulty=1)
    with pytest.raises(ConfigError, match=r"\['wrong_object'\].*only 'ignore'"):
        next(iter_oracle_records(generator, progress=False, noise=EditorNoise(ignore=0.1, wrong_object=0.1)))
    with pytest.raises(ConfigError, match="ignore=1.0 never applies an edit"):
        next(iter_oracle_records(generator, progress=False, noise=EditorNoise(ignore=1.0)))
    with pytest.raises(RetryBudgetError, match="max_steps=2"):
        list(iter_oracle_records(generator, progress=False, noise=EditorNoise(ignore=0.5, seed=0), max_steps=2))
    assert run_cli(tmp_path, "--noise_ignore", "1.5") != 0
    assert "noise_ignore=1.5" in capsys.readouterr().err and not (tmp_path / "out").exists()
