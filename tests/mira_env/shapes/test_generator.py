import json

import pytest

from mira_env.editors.base import STATE_KEY
from mira_env.errors import ConfigError, TaskError
from mira_env.shapes.execute import apply_op
from mira_env.shapes.generator import LEVELS, ShapesTaskConfig, ShapesTaskGenerator, split_of
from mira_env.shapes.grammar import parse_instruction
from mira_env.shapes.scene import Scene
from mira_env.tasks.task import TaskSource


def key(task):
    return json.dumps([task.metadata["scene"], task.metadata["program"]], sort_keys=True)


@pytest.fixture(scope="module")
def splits():
    return {split: ShapesTaskGenerator(split=split, num_tasks=150) for split in ("train", "validation", "test")}


def test_generator_is_a_task_source(splits):
    source = splits["test"]
    assert isinstance(source, TaskSource) and len(source) == 150
    task = source[3]
    assert source.get(task.id) is task and source[-147] is task
    with pytest.raises(TaskError, match=r"^no task with id 'nope' in this generator"):
        source.get("nope")
    with pytest.raises(IndexError):
        source[150]


def test_reproducible(splits):
    again = ShapesTaskGenerator(split="test", num_tasks=150)
    for index in (0, 77, 149):
        a, b = splits["test"][index], again[index]
        assert (a.id, a.instruction, a.atomic_instructions, a.variants, key(a)) == \
               (b.id, b.instruction, b.atomic_instructions, b.variants, key(b))
        assert a.image.tobytes() == b.image.tobytes()
    other_seed = ShapesTaskGenerator(split="test", num_tasks=150, seed=1)
    assert [key(other_seed[i]) for i in range(20)] != [key(splits["test"][i]) for i in range(20)]


def test_splits_are_disjoint_and_tasks_unique(splits):
    scenes = {}
    for split, source in splits.items():
        keys = [key(task) for task in source]
        assert len(set(keys)) == len(keys), f"duplicate task in {split}"
        scenes[split] = {json.dumps(task.metadata["scene"], sort_keys=True) for task in source}
        assert all(split_of(Scene.from_dict(task.metadata["scene"])) == split for task in source)
    assert not scenes["train"] & scenes["test"]
    assert not scenes["train"] & scenes["validation"]
    assert not scenes["validation"] & scenes["test"]


def test_program_executes_to_the_target(splits):
    for task in list(splits["validation"])[:60]:
        scene = Scene.from_dict(task.metadata["scene"])
        assert task.image.info[STATE_KEY] == task.metadata["scene"]
        assert task.target_image.info[STATE_KEY] == task.metadata["target_scene"]
        for text in task.atomic_instructions:
            (op,) = parse_instruction(text)
            scene = apply_op(op, scene)
        assert scene.to_dict() == task.metadata["target_scene"] != task.metadata["scene"]
        assert [step["instruction"] for step in task.metadata["program"]] == list(task.atomic_instructions)
        assert task.instruction not in task.variants and len(task.variants) >= 1


@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_difficulty_sets_the_number_of_edits(difficulty):
    source = ShapesTaskGenerator(split="train", num_tasks=25, difficulty=difficulty)
    counts = {len(task.atomic_instructions) for task in source}
    assert counts <= set(LEVELS[difficulty]["edits"])
    assert all(task.metadata["difficulty"] == difficulty for task in source)
    if difficulty == 1:
        assert {kind for task in source for kind in task.metadata["ref_kinds"]} <= {"attribute", "none"}


def test_hard_tasks_use_context():
    source = ShapesTaskGenerator(split="train", num_tasks=60, difficulty=3)
    texts = [task.instruction for task in source]
    assert any(" it " in text or text.endswith(" it.") for text in texts)          # pronouns
    assert any(text.startswith("Before you") or ", but first " in text for text in texts)  # reordered
    kinds = {kind for task in source for kind in task.metadata["ref_kinds"]}
    assert {"relation", "superlative"} <= kinds


@pytest.mark.parametrize("options, message", [
    ({"split": "dev"}, "split='dev' (type str) is not one of: 'train', 'validation', 'test'"),
    ({"num_tasks": 0}, "num_tasks=0 (type int) must be a positive int"),
    ({"difficulty": 4}, "difficulty=4 (type int) must be None (mixed) or one of 1, 2, 3"),
    ({"min_objects": 5, "max_objects": 3}, "min_objects=5 and max_objects=3 must satisfy 1 <= min_objects <= "
                                           "max_objects <= 9"),
    ({"seed": -2}, "seed=-2 (type int) must be an int >= 0"),
])
def test_config_errors(options, message):
    with pytest.raises(ConfigError) as info:
        ShapesTaskConfig(**options)
    assert str(info.value) == message


def test_atomic_instructions_are_the_clauses_of_the_complex_instruction():
    """The atomic instructions decompose the task's own complex instruction (as MIRA-Editing's merge does): at
    difficulty 1 (no pronouns) every one is a span of C, in order; with pronouns each still executes alone."""
    from mira_env.shapes.generator import ShapesTaskGenerator

    for task in list(ShapesTaskGenerator(split="train", difficulty=1, resolution=32))[:200]:
        text = task.instruction.lower()
        positions = [text.find(atomic) for atomic in task.atomic_instructions]
        assert all(p >= 0 for p in positions), (task.instruction, task.atomic_instructions)
        assert positions == sorted(positions)
