"""EditEnv(reward=CompositeReward(...)) reports every component in info."""

from __future__ import annotations

import pytest

from mira_env import EditEnv, IdentityEditor, Task
from mira_env.vector import BatchedEditEnv
from mira_env.rewards import build_reward
from tests.rewards.conftest import noise_image


def _tasks():
    return [Task(id=f"t{i}", instruction="make the circle red", image=noise_image(i, 32)) for i in range(2)]


def test_env_info_has_every_component(tiny_clip):
    name, ckpt = tiny_clip
    reward = build_reward({"device": "cpu", "clip": {"model_name": name, "pretrained": ckpt},
                           "terms": ["clip_i", "l1", {"name": "step_cost", "weight": -0.1}, "format",
                                     {"name": "clip_t", "weight": 0}]})
    env = EditEnv(editor=IdentityEditor(), tasks=_tasks(), reward=reward, height=32, width=32)
    env.reset(seed=0)
    _, _, _, _, info1 = env.step("make the circle red")  # no <edit> tags: bad format
    # terminal mode: scored when the episode ends; until then every component is there, unscored (None)
    assert info1["reward_components"] == dict.fromkeys(["clip_i", "l1", "step_cost", "format", "clip_t"])
    assert info1["reward_scored"] is False
    _, reward_value, terminated, _, info = env.step("<STOP>")
    assert terminated
    components = info["reward_components"]
    assert set(components) == {"clip_i", "l1", "step_cost", "format", "clip_t"}
    assert components["clip_i"] == pytest.approx(1.0, abs=1e-5) and components["l1"] == 0.0
    assert components["step_cost"] == 1.0 and components["format"] == 0.5
    expected = components["clip_i"] + components["l1"] - 0.1 * components["step_cost"] + components["format"]
    assert info["reward_total"] == pytest.approx(expected) and reward_value == pytest.approx(expected)
    assert info["reward_scored"] is True and info["reward_errors"] == {}


def test_env_unscored_total_is_reported(images):
    reward = build_reward({"terms": ["format", "l1"]})
    env = EditEnv(editor=IdentityEditor(), tasks=_tasks(), reward=reward, height=32, width=32, max_steps=1)
    env.reset(seed=0)
    _, _, _, truncated, info = env.step("paint it")
    assert truncated and info["reward_scored"] is True and info["reward_components"]["format"] == 0.0


def test_vector_env_scores_in_one_batch(tiny_clip):
    name, ckpt = tiny_clip
    reward = build_reward({"device": "cpu", "clip": {"model_name": name, "pretrained": ckpt}, "terms": ["clip_i"]})
    calls = []
    original = reward.score

    def counting(items):
        calls.append(len(items))
        return original(items)

    reward.score = counting
    envs = BatchedEditEnv(3, editor=IdentityEditor(), tasks=_tasks(), reward=reward, height=32, width=32)
    envs.reset(seed=1)
    _, rewards_, terminated, _, infos = envs.step(["<STOP>"] * 3)
    assert calls == [3] and terminated.all()
    assert list(infos["reward_components"]["clip_i"]) == pytest.approx([1.0] * 3, abs=1e-5)
