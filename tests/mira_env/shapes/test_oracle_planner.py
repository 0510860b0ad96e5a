import random

import pytest
from PIL import Image

from mira_env.reward_api import RewardInput
from mira_env.shapes.execute import apply_op
from mira_env.shapes.generator import random_scene
from mira_env.shapes.grammar import parse_instruction
from mira_env.shapes.matching import min_cost_assignment
from mira_env.shapes.oracle import ShapesOracleReward, oracle_score
from mira_env.shapes.planner import next_edit, plan
from mira_env.shapes.render import render_image
from mira_env.shapes.scene import Obj, Scene
from mira_env.tasks.task import Task

TARGET = Scene.make("white", [Obj("circle", "red", "small", 0, 0), Obj("star", "blue", "large", 1, 1)])


@pytest.mark.parametrize("scene, expected", [
    (TARGET, (1.0, True)),
    (Scene("gray", TARGET.objects), (2 / 3, False)),                                          # background only
    (Scene.make("white", [TARGET.objects[0]]), (2 / 3, False)),                               # a missing object
    (Scene.make("white", list(TARGET.objects) + [Obj("square", "red", "small", 2, 2)]), (3 / 4, False)),  # extra
    (Scene.make("white", [TARGET.objects[0], Obj("star", "pink", "large", 1, 1)]), (2.75 / 3, False)),  # colour
    (Scene.make("white", [TARGET.objects[0], Obj("star", "blue", "large", 0, 2)]), (2.75 / 3, False)),  # moved
    (Scene("black", ()), (0.0, False)),
])
def test_oracle_score(scene, expected):
    score, success = oracle_score(scene.to_dict(), TARGET.to_dict())
    assert success is expected[1]
    assert score == pytest.approx(expected[0])


def test_oracle_score_is_symmetric_in_object_order_and_bounded():
    rng = random.Random(0)
    for _ in range(50):
        a, b = random_scene(rng, 0, 9), random_scene(rng, 0, 9)
        score, success = oracle_score(a, b)
        assert 0.0 <= score <= 1.0 and success is (a == b)
        assert score == pytest.approx(oracle_score(b, a)[0])


def test_min_cost_assignment_is_optimal():
    import itertools

    rng = random.Random(1)
    for _ in range(30):
        n = rng.randint(1, 6)
        cost = [[rng.random() for _ in range(n)] for _ in range(n)]
        best = min(sum(cost[i][p[i]] for i in range(n)) for p in itertools.permutations(range(n)))
        assignment = min_cost_assignment(cost)
        assert sorted(assignment) == list(range(n))
        assert sum(cost[i][assignment[i]] for i in range(n)) == pytest.approx(best)


def _item(scene, task):
    return RewardInput(source=task.image, edited=render_image(scene), instruction=task.instruction, trajectory=[],
                       task=task)


def test_shapes_oracle_reward():
    task = Task(id="t", instruction="x", image=render_image(TARGET), metadata={"target_scene": TARGET.to_dict()})
    near = Scene("gray", TARGET.objects)
    outputs = ShapesOracleReward().score([_item(TARGET, task), _item(near, task)])
    assert (outputs[0].total, dict(outputs[0].components)) == (1.0, {"oracle": 1.0, "success": 1.0})
    assert outputs[1].total == pytest.approx(2 / 3) and outputs[1].components["success"] == 0.0
    assert ShapesOracleReward(success_bonus=1.0).score([_item(TARGET, task)])[0].total == 2.0


def test_shapes_oracle_reward_unscorable_items_are_none():
    task = Task(id="t", instruction="x", image=render_image(TARGET), metadata={})
    plain = RewardInput(source=task.image, edited=Image.new("RGB", (8, 8)), instruction="x", trajectory=[],
                        task=Task(id="u", instruction="x", image=task.image, metadata={"target_scene": TARGET.to_dict()}))
    no_target, no_scene = ShapesOracleReward().score([_item(TARGET, task), plain])
    assert no_target.total is None and no_target.errors == {
        "oracle": "cannot score: the task has no target_scene (shapes-world tasks only)"}
    assert no_scene.total is None and no_scene.errors == {
        "oracle": "cannot score: the edited image carries no scene (shapes-world tasks only)"}


def test_planner_reaches_any_target():
    rng = random.Random(2)
    for _ in range(60):
        a, b = random_scene(rng, 0, 9), random_scene(rng, 0, 9)
        scene = a
        for text in plan(a, b):
            (op,) = parse_instruction(text)
            scene = apply_op(op, scene)
        assert scene == b
    assert next_edit(TARGET, TARGET) is None


def test_planner_breaks_move_cycles():
    a = Scene.make("white", [Obj("circle", "red", "small", 0, 0), Obj("star", "blue", "small", 0, 1)])
    b = Scene.make("white", [Obj("circle", "red", "small", 0, 1), Obj("star", "blue", "small", 0, 0)])
    steps = plan(a, b)
    assert len(steps) == 3 and steps[0].startswith("move ")
