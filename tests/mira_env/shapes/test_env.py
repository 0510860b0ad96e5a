import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import mira_env  # noqa: F401  (registers the ids)
from mira_env.errors import ConfigError
from mira_env.shapes.editor import ShapesEditor
from mira_env.shapes.env import make_shapes_env
from mira_env.shapes.oracle import ShapesOracleReward
from mira_env.vector import BatchedEditEnv


def test_check_env_passes():
    env = gymnasium.make("mira/Shapes-v0", num_tasks=20, reward="oracle", render_mode="rgb_array")
    check_env(env.unwrapped)
    assert isinstance(env.unwrapped.editor, ShapesEditor)
    assert isinstance(env.unwrapped.reward_fn, ShapesOracleReward)
    assert env.unwrapped.config.reject_blank_outputs is False


def test_episode_infos_and_oracle_reward():
    env = make_shapes_env(split="validation", num_tasks=10, reward="oracle", resolution=64)
    obs, info = env.reset(seed=3, options={"task": 2})
    task = info["task"]
    assert obs["current"].shape == (64, 64, 3) and info["state"] == task.metadata["scene"]
    assert obs["instruction"] == task.instruction
    for text in task.atomic_instructions:
        obs, reward, terminated, truncated, info = env.step(text)
        assert info["editor_status"]["ok"] is True and not terminated
    assert info["state"] == task.metadata["target_scene"]
    assert np.array_equal(obs["current"], np.asarray(task.target_image))
    obs, reward, terminated, truncated, info = env.step("<STOP>")
    assert terminated and reward == 1.0 and info["reward_components"] == {"oracle": 1.0, "success": 1.0}


def test_failed_edit_is_reported_and_leaves_the_image():
    env = make_shapes_env(num_tasks=5)
    obs, info = env.reset(seed=0)
    before = obs["current"].copy()
    obs, _, _, _, info = env.step("remove the purple unicorn")
    assert info["editor_status"]["ok"] is False and info["editor_status"]["reason"] == "parse_error"
    assert np.array_equal(obs["current"], before)


def test_noise_setting_reaches_the_editor():
    env = make_shapes_env(num_tasks=5, noise={"ignore": 1.0})
    obs, info = env.reset(seed=0, options={"task": 0})
    _, _, _, _, step_info = env.step(info["task"].atomic_instructions[0])
    assert step_info["state"] == info["state"] and step_info["editor_status"]["noise"][0].startswith("ignored")


@pytest.mark.parametrize("options, message", [
    ({"height": 64}, "height= is fixed by the shapes world (use resolution=); remove it"),
    ({"reward": "clip"}, "reward='clip' (type str): expected None, 'oracle' or an object with score(items)"),
    ({"split": "dev"}, "split='dev' (type str) is not one of: 'train', 'validation', 'test'"),
])
def test_make_shapes_env_errors(options, message):
    with pytest.raises(ConfigError) as info:
        make_shapes_env(**options)
    assert str(info.value) == message


def test_batched_env_groups_and_one_editor_call():
    vec = BatchedEditEnv(4, env_fn=lambda: make_shapes_env(num_tasks=10, reward="oracle", noise=0.3))
    calls = []
    original = vec.editor.edit
    vec.editor.edit = lambda images, texts, seeds: calls.append(len(images)) or original(images, texts, seeds)
    obs, infos = vec.reset_group(task=1, seed=5)
    task = infos["task"][0]
    assert all(t is task for t in infos["task"])
    text = task.atomic_instructions[0]
    results = vec.step_active([0, 1, 2, 3], [text] * 4)
    assert calls == [4]
    # same task, same editor seeds, same action -> the same (noisy) outcome in the whole group
    assert all(r[4]["state"] == results[0][4]["state"] for r in results)
    obs, rewards, terminated, truncated, infos = vec.step(["<STOP>"] * 4)
    assert terminated.all() and np.allclose(rewards, rewards[0])
    assert obs["current"].shape == (4, 128, 128, 3)
