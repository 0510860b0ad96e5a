"""Shapes-world oracle terms: the plain match score and progress over the source."""

from __future__ import annotations

import pytest

import mira_env  # noqa: F401 - registers the ids
from mira_env.shapes import make_shapes_env
from mira_env.rewards import build_reward
from mira_env.rewards.oracle import OracleProgress, OracleReward


def play(actions_from_task, seed=0):
    env = make_shapes_env(split="test", difficulty=1, num_tasks=20, max_steps=6)
    _, info = env.reset(seed=seed)
    for action in actions_from_task(info["task"]):
        env.step(action)
    return env.reward_input()


def test_no_op_pays_the_source_match_but_no_progress():
    item = play(lambda task: [])
    (plain,), (progress,) = OracleReward().score([item]), OracleProgress().score([item])
    assert 0.3 < plain < 1.0  # the unedited source already matches much of the target
    assert progress == 0.0


def test_reaching_the_target_is_full_progress_and_bonus_applies():
    item = play(lambda task: list(task.atomic_instructions))
    assert OracleReward().score([item])[0] == 1.0
    assert OracleProgress(success_bonus=0.5).score([item])[0] == 1.5


def test_moving_away_is_negative_and_matches_the_formula():
    source = play(lambda task: [])
    item = play(lambda task: ["remove the leftmost shape", "remove the rightmost shape"])
    start, end = OracleReward().score([source])[0], OracleReward().score([item])[0]
    assert end < start
    progress = OracleProgress().score([item])[0]
    assert progress == pytest.approx(max(-1.0, (end - start) / (1.0 - start)))
    assert -1.0 <= progress < 0.0


def test_non_shapes_items_are_none_with_a_reason():
    from tests.mira_env.helpers import make_tasks
    from mira_env import EditEnv

    env = EditEnv(editor="identity", tasks=make_tasks(), height=16, width=16)
    env.reset(seed=0)
    scores = OracleProgress().score([env.reward_input()])
    assert scores[0] is None and "carries no scene" in scores.reasons[0]


def test_progress_is_in_the_registry():
    reward = build_reward({"terms": ["oracle_progress", "oracle"], "weights": [1.0, 0.0]})
    output = reward.score([play(lambda task: [])])[0]
    assert output.components == {"oracle_progress": 0.0, "oracle": pytest.approx(output.components["oracle"])}
    assert output.total == 0.0
