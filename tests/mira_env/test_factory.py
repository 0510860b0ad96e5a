"""``mira_env.make`` (one env factory) and ``EditEnv.clone``."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import mira_env
from mira_env import ConfigError, EditEnv, IdentityEditor
from mira_env.shapes.editor import ShapesEditor
from mira_env.shapes.generator import ShapesTaskGenerator
from mira_env.shapes.oracle import ShapesOracleReward
from mira_env.vector import BatchedEditEnv
from tests.mira_env.helpers import make_tasks, write_magicbrush


def test_the_default_is_the_shapes_world_with_its_oracle():
    env = mira_env.make()
    assert isinstance(env, EditEnv) and isinstance(env.editor, ShapesEditor)
    assert isinstance(env.tasks, ShapesTaskGenerator) and env.tasks.config.split == "train"
    assert isinstance(env.reward_fn, ShapesOracleReward)
    assert (env.config.height, env.config.width, env.config.max_steps) == (128, 128, 10)
    assert env.config.reject_blank_outputs is False  # shapes scenes may be a plain background


def test_shapes_arguments_reach_the_generator_and_the_editor():
    env = mira_env.make("shapes", split="test", num_tasks=3, difficulty=2, seed=5, noise=0.25, size=64, max_steps=4,
                        reward_mode="every_step")
    assert len(env.tasks) == 3 and env.tasks.config.split == "test" and env.tasks.config.seed == 5
    assert {task.metadata["difficulty"] for task in env.tasks} == {2}
    assert env.editor.noise.ignore > 0
    assert (env.config.height, env.config.max_steps, env.config.reward_mode) == (64, 4, "every_step")
    _, info = env.reset(seed=1)
    assert info["task"].id in {task.id for task in env.tasks}


def test_a_foreign_editor_plays_shapes_tasks_with_the_oracle_reward():
    env = mira_env.make("shapes", editor="identity", num_tasks=2)
    assert isinstance(env.editor, IdentityEditor) and isinstance(env.reward_fn, ShapesOracleReward)
    assert env.config.max_steps == 10 and env.config.reject_blank_outputs is True
    env.reset(seed=0, options={"task": 0})
    _, _, terminated, _, info = env.step("<STOP>")
    assert terminated and info["reward_components"]["oracle"] is not None


def test_a_task_file_needs_an_editor_and_takes_size_and_reward(tmp_path):
    path = write_magicbrush(tmp_path, 2)
    env = mira_env.make(str(path), editor="identity", size=(32, 48), max_steps=3)
    assert len(env.tasks) == 2 and env.reward_fn is None
    assert (env.config.height, env.config.width, env.config.max_steps) == (32, 48, 3)
    obs, _ = env.reset(seed=0)
    assert obs["source"].shape == (32, 48, 3)
    with pytest.raises(ConfigError) as caught:
        mira_env.make(str(path))
    assert str(caught.value).startswith(f"tasks={str(path)!r} needs an editor: pass editor=<Editor> or a "
                                        f"spec ('identity', 'shapes'")
    with pytest.raises(ConfigError) as caught:
        mira_env.make(make_tasks(2), editor=IdentityEditor(), reward="judge.yaml")
    assert str(caught.value) == ("reward='judge.yaml': pass None, 'oracle' or a reward object; for a YAML reward "
                                 "config build it first: reward=mira_env.rewards.build_reward('judge.yaml')")


@pytest.mark.parametrize("kwargs, message", [
    ({"tasks": "{file}", "editor": "identity", "noise": 0.2},
     "noise=0.2 (type float) is the shapes editor's noise; editor='identity' (type str) has none: remove noise= "
     "(or use editor='shapes')"),
    ({"tasks": "{file}", "editor": "identity", "split": "test"},
     "['split'] configure the shapes-world task generator; tasks="),
    ({"editor_options": {"device": "cuda"}},
     "editor_options ['device'] go to make_editor; the shapes editor takes noise= only"),
    ({"tasks": "{file}", "editor": "identity", "size": "big"}, "size='big' (type str) must be an int or a (height, "
                                                               "width) pair"),
    ({"tasks": "{file}", "editor": "identity", "reward": 3},
     "reward=3 (type int): expected None, 'oracle' or an object with score(items)"),
    ({"height": 64}, "height= is fixed by the shapes world (use resolution=); remove it"),
    ({"tasks": "{file}", "editor": "identity", "colour": "red"}, "unknown EditEnv option(s) ['colour']"),
])
def test_bad_arguments_are_named(tmp_path, kwargs, message):
    path = str(write_magicbrush(tmp_path, 1))
    kwargs = {key: (path if value == "{file}" else value) for key, value in kwargs.items()}
    with pytest.raises(ConfigError) as caught:
        mira_env.make(**kwargs)
    assert str(caught.value).startswith(message)


def test_a_task_list_with_an_editor_object_and_a_reward_object():
    class Half:
        component_names = ("half",)

        def score(self, items):
            return [mira_env.RewardOutput(0.5, {"half": 0.5}) for _ in items]

    editor = IdentityEditor()
    env = mira_env.make(make_tasks(3), editor=editor, reward=Half(), max_steps=2)
    env.reset(seed=0)
    _, reward, _, _, info = env.step("<STOP>")
    assert env.editor is editor and reward == 0.5 and info["reward_components"] == {"half": 0.5}


def test_clone_shares_editor_tasks_reward_and_config_but_not_the_episode():
    env = mira_env.make("shapes", num_tasks=4, render_mode="rgb_array")
    env.reset(seed=3)
    env.step("add a red circle")
    twin = env.clone()
    assert type(twin) is EditEnv and twin is not env
    assert (twin.editor, twin.tasks, twin.reward_fn, twin.config) == (env.editor, env.tasks, env.reward_fn, env.config)
    assert twin.editor is env.editor and twin.tasks is env.tasks and twin.reward_fn is env.reward_fn
    assert twin.render_mode == "rgb_array" and twin.done and twin.task is None
    with pytest.raises(gym.error.ResetNeeded):
        twin.step("<STOP>")
    # same seed, same episode: the clone replays the original
    first, _ = env.reset(seed=11)
    second, _ = twin.reset(seed=11)
    assert np.array_equal(first["source"], second["source"]) and first["instruction"] == second["instruction"]
    check_env(twin, skip_render_check=True)


def test_clone_keeps_a_subclass():
    class Tagged(EditEnv):
        tag = "mine"

    env = Tagged(editor=IdentityEditor(), tasks=make_tasks(2))
    assert type(env.clone()) is Tagged


def test_batched_envs_are_clones_of_one_env():
    venv = mira_env.make_batched(3, tasks="shapes", num_tasks=2, noise=0.1)
    assert isinstance(venv, BatchedEditEnv) and venv.num_envs == 3
    assert all(env.editor is venv.editor and env.tasks is venv.tasks for env in venv.envs)
    base = mira_env.make("shapes", num_tasks=2)
    from_env = BatchedEditEnv.from_env(base, 2)
    assert from_env.envs[0] is base and from_env.envs[1].editor is base.editor
    obs, _ = from_env.reset_group(task=0, seed=4)
    assert np.array_equal(obs["source"][0], obs["source"][1])
