"""BatchedEditEnv: one editor call and one reward call per step for all envs; GRPO groups."""

from __future__ import annotations

import numpy as np
import pytest

from mira_env import ConfigError
from mira_env.vector import BatchedEditEnv
from tests.mira_env.helpers import MeanBrightnessReward, SeededNoiseEditor, make_tasks


def make_vector(n=4, **kwargs):
    editor, reward = SeededNoiseEditor(), MeanBrightnessReward()
    env = BatchedEditEnv(n, editor=editor, tasks=make_tasks(), reward=reward, height=16, width=16, **kwargs)
    return env, editor, reward


def test_one_editor_call_per_step_and_batched_spaces():
    env, editor, _ = make_vector(4, max_steps=3)
    obs, info = env.reset(seed=0)
    assert obs["source"].shape == (4, 16, 16, 3)
    assert env.observation_space.contains(obs)
    env.step(["a", "b", "c", "d"])
    env.step(["a", "", "<STOP>", "d"])
    assert editor.batches == [4, 2]


def test_reset_group_shares_task_and_editor_seeds():
    env, editor, _ = make_vector(3, max_steps=2)
    _, info = env.reset_group(seed=11)
    assert len(set(info["task_id"])) == 1 and len(set(info["editor_seed"])) == 1
    obs = env.step(["same", "same", "same"])[0]
    assert np.array_equal(obs["current"][0], obs["current"][1]) and np.array_equal(obs["current"][1], obs["current"][2])
    _, info2 = env.reset_group(seed=11)
    assert list(info2["task_id"]) == list(info["task_id"]) and list(info2["editor_seed"]) == list(info["editor_seed"])


def test_step_active_scores_finished_episodes_in_one_reward_call():
    env, editor, reward = make_vector(4, max_steps=2)
    env.reset_group(task=0, seed=0)
    results = env.step_active([0, 1, 2], ["<STOP>", "x", "<STOP>"])
    assert reward.batches == [2]
    assert [r[2] for r in results] == [True, False, True]
    assert "reward_components" in results[0][4] and "reward_components" not in results[1][4]
    results = env.step_active([1, 3], ["y", "z"])
    assert [r[3] for r in results] == [True, False]
    assert editor.batches == [1, 2]


def test_autoreset_next_step():
    env, _, _ = make_vector(2, max_steps=1)
    env.reset(seed=0)
    _, _, _, truncated, _ = env.step(["a", "b"])
    assert truncated.tolist() == [True, True]
    obs, rewards, _, truncated, info = env.step(["ignored", "ignored"])
    assert truncated.tolist() == [False, False] and rewards.tolist() == [0.0, 0.0]
    assert obs["step"].tolist() == [0, 0]


def test_vector_errors():
    with pytest.raises(ConfigError, match="num_envs=0 must be a positive int"):
        BatchedEditEnv(0, editor="identity", tasks=make_tasks())
    env, _, _ = make_vector(2)
    env.reset(seed=0)
    with pytest.raises(ConfigError, match="step got 1 actions for 2 envs"):
        env.step(["a"])


def test_reset_group_on_a_subset_before_any_full_reset():
    env, editor, _ = make_vector(4, max_steps=2)
    obs, info = env.reset_group(task=1, seed=0, indices=[2, 3])
    assert obs["source"].shape == (4, 16, 16, 3)
    assert list(info["_task_id"]) == [False, False, True, True]
    assert not obs["source"][0].any() and obs["source"][2].any()
    results = env.step_active([2, 3], ["x", "x"])
    assert np.array_equal(results[0][0]["current"], results[1][0]["current"])
    assert editor.batches == [2]
