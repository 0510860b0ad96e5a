"""BatchedEditEnv: one editor call and one reward call per step for all envs; GRPO groups."""

from __future__ import annotations

import numpy as np
import pytest

import gymnasium as gym

import mira_env  # noqa: F401 - registers the ids
from mira_env import ConfigError
from mira_env.shapes.env import make_shapes_env
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
    assert results[0][4]["reward_scored"] is True and results[1][4]["reward_scored"] is False
    assert results[1][4]["reward_components"] == {"brightness": None, "steps": None}
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
    with pytest.raises(ConfigError, match=r"num_envs=0 \(type int\) must be a positive int"):
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


def _keys(env_info):
    return {key: (_keys(value) if isinstance(value, dict) else None) for key, value in env_info.items()}


def test_info_keys_are_the_same_at_reset_and_every_step_in_every_env():
    env = make_shapes_env(split="test", max_steps=3)
    _, first = env.reset(seed=0)
    seen = [first]
    for action in ("make the background black", "", "<STOP>"):
        seen.append(env.step(action)[4])
    assert all(_keys(info) == _keys(first) for info in seen)
    assert all(isinstance(info["editor_seed"], int) for info in seen)
    assert seen[1]["editor_status"]["ok"] is True and dict(seen[3]["editor_status"]) == {}
    assert set(first["reward_components"]) == {"oracle", "success"} and first["reward_components"]["oracle"] is None
    assert seen[3]["reward_scored"] is True and isinstance(seen[3]["reward_components"]["oracle"], float)


@pytest.mark.parametrize("mode", ["sync", "vector_entry_point"])
@pytest.mark.parametrize("actions", [["make the background black", "<STOP>"], ["<STOP>", "make the background black"]])
def test_make_vec_steps_mixed_edit_and_stop_in_both_modes(mode, actions):
    env = gym.make_vec("mira/Shapes-v0", num_envs=2, vectorization_mode=mode, split="test", max_steps=3)
    assert isinstance(env.unwrapped if mode == "sync" else env, gym.vector.VectorEnv)
    obs, info = env.reset(seed=0)
    obs, rewards, terminated, truncated, info = env.step(actions)
    assert terminated.tolist() == [a == "<STOP>" for a in actions]
    assert list(info["_editor_seed"]) == [True, True]
    assert all(isinstance(seed, (int, np.integer)) for seed in info["editor_seed"])
    stopped = actions.index("<STOP>")
    assert info["reward_scored"][stopped] and not info["reward_scored"][1 - stopped]
    assert set(info["reward_components"]) >= {"oracle", "success"}
    statuses = list(info["editor_status"])
    assert dict(statuses[stopped]) == {} and statuses[1 - stopped]["ok"] is True
    if mode == "vector_entry_point":
        from mira_env.vector import BatchedEditEnv

        assert isinstance(env, BatchedEditEnv) and len({id(e.editor) for e in env.envs}) == 1
    env.close()


def test_image_edit_vector_entry_point_shares_one_editor():
    editor = SeededNoiseEditor()
    env = gym.make_vec("mira/ImageEdit-v0", num_envs=3, vectorization_mode="vector_entry_point", editor=editor,
                       tasks=make_tasks(), height=16, width=16, max_steps=2)
    assert isinstance(env, BatchedEditEnv) and all(e.editor is editor for e in env.envs)
    env.reset(seed=0)
    env.step(["a", "b", "c"])
    assert editor.batches == [3]


@pytest.mark.parametrize("actions", [["<STOP>", "brighten"], ["brighten", "<STOP>"]])
def test_batched_step_with_stop_first_or_last(actions):
    env, editor, _ = make_vector(2, max_steps=3)
    env.reset(seed=0)
    _, _, terminated, _, info = env.step(actions)
    assert terminated.tolist() == [a == "<STOP>" for a in actions]
    assert [dict(status) for status in info["editor_status"]] == [{}, {}]  # no status from this editor, no stray key
    assert sorted(k for k in info if not k.startswith("_")) == sorted(k[1:] for k in info if k.startswith("_"))


def test_step_active_refuses_a_repeated_index():
    env, editor, _ = make_vector(3, max_steps=3)
    env.reset(seed=0)
    with pytest.raises(ConfigError, match=r"step_active indices \[0, 0\] repeat \[0\]: each environment steps at "
                                          r"most once per call"):
        env.step_active([0, 0], ["a", "b"])
    assert editor.batches == []
    with pytest.raises(ConfigError, match=r"step_active indices \[5\] are out of range for 3 environments"):
        env.step_active([5], ["a"])


def test_max_episode_steps_must_match_the_budget():
    with pytest.raises(ConfigError, match=r"max_episode_steps=2 differs from max_steps=3; .* pass max_steps=2"):
        gym.make_vec("mira/Shapes-v0", num_envs=2, vectorization_mode="vector_entry_point", max_steps=3,
                     max_episode_steps=2)
