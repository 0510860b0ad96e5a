"""The EditEnv contract: spaces, seeding, termination, bad actions, editor failures, rewards, render."""

from __future__ import annotations

import sys

import gymnasium as gym
import numpy as np
import pytest
from PIL import Image
from gymnasium.utils.env_checker import check_env

import mira_env
from mira_env import ActionError, ConfigError, EditEnv, IdentityEditor, TaskError
from mira_env.reward_api import RewardOutput
from mira_env.tasks.task import Task
from tests.mira_env.helpers import FailingEditor, MeanBrightnessReward, SeededNoiseEditor, make_tasks


def make_env(editor=None, **kwargs) -> EditEnv:
    kwargs.setdefault("height", 32)
    kwargs.setdefault("width", 32)
    kwargs.setdefault("tasks", make_tasks())
    return gym.make("mira/ImageEdit-v0", editor=editor or SeededNoiseEditor(), **kwargs).unwrapped


def test_import_does_not_load_heavy_libraries():
    import subprocess

    code = ("import sys, mira_env, mira_env.agents, mira_env.rewards, mira_env.train, mira_env.train.cli; "
            "print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'trl', 'open_clip', 'lpips') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("editor", [SeededNoiseEditor, IdentityEditor])
def test_check_env_passes(editor):
    check_env(make_env(editor()))


def test_spaces_and_reset_observation():
    env = make_env(max_steps=3)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert obs["source"].shape == (32, 32, 3) and obs["source"].dtype == np.uint8
    assert np.array_equal(obs["source"], obs["current"])
    assert obs["step"] == 0 and obs["history"] == ""
    assert info["task_id"] in {"task-0", "task-1", "task-2"}
    assert info["source_size"] == (48, 40)
    assert env.observation_space["step"].n == 4


def test_same_seed_and_actions_replay_identical_images():
    actions = ["make it red", "add a hat", "<STOP>"]

    def play(seed):
        env = make_env()
        frames = [env.reset(seed=seed)[0]["current"]]
        for action in actions:
            frames.append(env.step(action)[0]["current"])
        return frames, env.task.id, env.episode_seed

    first, second, other = play(7), play(7), play(8)
    assert first[1:] == second[1:]
    assert all(np.array_equal(a, b) for a, b in zip(first[0], second[0]))
    assert other[2] != first[2]


def test_stop_terminates_and_budget_truncates():
    env = make_env(max_steps=2)
    env.reset(seed=0)
    _, _, terminated, truncated, info = env.step("  <stop> ")
    assert (terminated, truncated, info["stop"]) == (True, False, True)
    env.reset(seed=0)
    assert env.step("a")[2:4] == (False, False)
    _, _, terminated, truncated, info = env.step("b")
    assert (terminated, truncated) == (False, True)
    assert info["history"] == ["a", "b"]
    with pytest.raises(gym.error.ResetNeeded, match="call reset"):
        env.step("c")


def test_history_observation_lists_executed_instructions():
    env = make_env(max_steps=4)
    env.reset(seed=1)
    env.step("make  it\nred")
    obs = env.step("add a hat")[0]
    assert obs["history"] == "make it red\nadd a hat"
    assert obs["step"] == 2


@pytest.mark.parametrize("action, type_name", [(3, "int"), (None, "NoneType"), (b"red", "bytes"), (["a"], "list")])
def test_non_string_action_raises_naming_the_type(action, type_name):
    env = make_env()
    env.reset(seed=0)
    with pytest.raises(ActionError, match=rf"action must be a str .* got .*\(type {type_name}\)"):
        env.step(action)


@pytest.mark.parametrize("action, reason", [
    ("", "empty"), ("   \n\t ", "empty"), ("make it r\x00ed", "control_character"),
    ("make it\u200bred", "control_character"), ("x" * 33, "too_long"),
])
def test_invalid_instructions_do_not_reach_the_editor(action, reason):
    editor = SeededNoiseEditor()
    env = make_env(editor, max_instruction_length=32, invalid_action_penalty=-0.25)
    obs0, _ = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(action)
    assert editor.batches == []
    assert np.array_equal(obs["current"], obs0["current"])
    assert info["valid_action"] is False and info["invalid_reason"] == reason
    assert reward == pytest.approx(-0.25) and info["penalty"] == pytest.approx(-0.25)
    assert obs["step"] == 1 and obs["history"] == ""
    assert not terminated


@pytest.mark.parametrize("mode, message", [
    ("raise", "RuntimeError: CUDA out of memory"),
    ("blank", "blank (constant colour) image"),
    ("nan", "blank (constant colour) image"),
    ("array", "editor output is ndarray, not a PIL image"),
    ("short", "editor returned 0 outputs for 1 inputs"),
])
def test_editor_failures_are_recorded_and_the_image_kept(mode, message):
    env = make_env(FailingEditor(mode), editor_error_penalty=-0.5, max_steps=3)
    obs0, _ = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step("make it red")
    assert message in info["editor_error"]
    assert np.array_equal(obs["current"], obs0["current"])
    assert reward == pytest.approx(-0.5)
    assert (terminated, truncated) == (False, False)
    assert info["history"] == ["make it red"]


def test_editor_failure_can_truncate():
    env = make_env(FailingEditor("raise"), on_editor_error="truncate")
    env.reset(seed=0)
    _, _, terminated, truncated, info = env.step("make it red")
    assert (terminated, truncated) == (False, True)
    assert info["editor_error"].startswith("RuntimeError")


def test_blank_outputs_accepted_when_configured():
    env = make_env(FailingEditor("blank"), reject_blank_outputs=False)
    env.reset(seed=0)
    obs, _, _, _, info = env.step("paint it black")
    assert info["editor_error"] is None
    assert obs["current"].max() == 0


def test_terminal_reward_scores_once_with_components_in_info():
    reward = MeanBrightnessReward()
    env = make_env(reward=reward, max_steps=3)
    env.reset(seed=0)
    _, r1, _, _, info1 = env.step("brighten")
    assert r1 == 0.0 and reward.batches == []
    assert info1["reward_components"] == {"brightness": None, "steps": None}  # the same keys, unscored
    assert info1["reward_total"] is None and info1["reward_scored"] is False and dict(info1["reward_errors"]) == {}
    _, r2, terminated, _, info2 = env.step("<STOP>")
    assert terminated and reward.batches == [1]
    expected = float(np.asarray(env.current_image, dtype=np.float64).mean() / 255)
    assert r2 == pytest.approx(expected)
    assert info2["reward_components"] == {"brightness": pytest.approx(expected), "steps": 1.0}
    assert info2["reward_scored"] is True


def test_delta_rewards_sum_to_the_final_score():
    reward = MeanBrightnessReward()
    env = make_env(reward=reward, reward_mode="delta", max_steps=3)
    env.reset(seed=0)
    total = sum(env.step(a)[1] for a in ("one", "two", "three"))
    assert reward.batches == [1, 1, 1]
    assert total == pytest.approx(np.asarray(env.current_image).mean() / 255.0)


def test_every_step_rewards_and_unscorable_reward_is_flagged():
    class Unscorable:
        def score(self, items):
            return [RewardOutput(None, {"judge": None}, {"judge": "unparseable answer 'maybe'"}) for _ in items]

    env = make_env(reward=Unscorable(), reward_mode="every_step", invalid_action_penalty=-1.0)
    env.reset(seed=0)
    _, reward, _, _, info = env.step("")
    assert reward == -1.0
    assert info["reward_scored"] is False and info["reward_total"] is None
    assert info["reward_errors"] == {"judge": "unparseable answer 'maybe'"}


def test_reward_exceptions_become_data():
    class Broken:
        def score(self, items):
            raise ValueError("judge server unreachable")

    env = make_env(reward=Broken(), max_steps=1)
    env.reset(seed=0)
    _, reward, _, truncated, info = env.step("a")
    assert truncated and reward == 0.0
    assert info["reward_errors"] == {"reward": "ValueError: judge server unreachable"}


def test_reset_task_choice_by_index_id_and_task():
    env = make_env()
    tasks = env.tasks
    assert env.reset(options={"task": 2})[1]["task_id"] == "task-2"
    assert env.reset(options={"task": "task-1"})[1]["task_id"] == "task-1"
    assert env.reset(options={"task": tasks[0]})[1]["task_id"] == "task-0"
    assert env.reset(options={"task": 0, "editor_seed": 5})[1]["editor_seed"] == 5


@pytest.mark.parametrize("options, error, message", [
    ({"task": 9}, TaskError, "options\\['task'\\]=9 is out of range for 3 tasks"),
    ({"task": "nope"}, TaskError, "no task with id 'nope'"),
    ({"task": 1.5}, TaskError, "expected a Task, an index or a task id"),
    ({"colour": 1}, ConfigError, "unknown reset option\\(s\\) \\['colour'\\]"),
])
def test_reset_option_errors(options, error, message):
    env = make_env()
    with pytest.raises(error, match=message):
        env.reset(options=options)


@pytest.mark.parametrize("kwargs, message", [
    ({"reward_mode": "sparse"}, "reward_mode='sparse' .* is not one of: 'terminal', 'every_step', 'delta'"),
    ({"max_steps": 0}, "max_steps=0 .* must be a positive int"),
    ({"on_editor_error": "crash"}, "on_editor_error='crash'"),
    ({"colour": "red"}, "unknown EditEnv option\\(s\\) \\['colour'\\]"),
    ({"render_mode": "human"}, "render_mode='human' is not supported"),
])
def test_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        EditEnv(editor=SeededNoiseEditor(), tasks=make_tasks(), **kwargs)


def test_missing_editor_or_tasks_explain_the_fix():
    with pytest.raises(ConfigError, match="EditEnv needs an editor"):
        EditEnv(tasks=make_tasks())
    with pytest.raises(ConfigError, match="mira/Shapes-v0"):
        EditEnv(editor="identity")
    with pytest.raises(ConfigError, match="has no edit"):
        EditEnv(editor=object(), tasks=make_tasks())


def test_render_returns_one_frame_and_the_list_mode_the_episode():
    env = make_env(render_mode="rgb_array", max_steps=3)
    env.reset(seed=0)
    obs = env.step("a")[0]
    obs = env.step("b")[0]
    frame = env.render()
    assert frame.shape == (32, 32, 3) and frame.dtype == np.uint8 and np.array_equal(frame, obs["current"])
    listed = gym.make("mira/ImageEdit-v0", editor=SeededNoiseEditor(), tasks=make_tasks(), height=32, width=32,
                      max_steps=3, render_mode="rgb_array_list")
    listed.reset(seed=0)
    listed.step("a")
    listed.step("b")
    frames = listed.render()
    assert len(frames) == 3 and all(f.shape == (32, 32, 3) for f in frames)
    assert np.array_equal(frames[-1], frame)
    strip = env.episode_strip()
    assert strip.shape == (32, 3 * 32 + 2 * 2, 3) and strip.dtype == np.uint8
    source = env.reset(seed=0)[0]["source"]
    assert np.array_equal(strip[:, :32], source)  # the source panel comes first
    assert (strip[:, 32:34] == 255).all()  # white gap between panels
    env2 = make_env(max_steps=3)
    env2.reset(seed=0)
    assert env2.render() is None


def test_info_timings_are_measured_and_compare_equal():
    env = make_env()
    env.reset(seed=0)
    info = env.step("a")[4]
    assert info["timings"].editor_s > 0
    assert info["timings"] == mira_env.StepTimings(editor_s=123.0)


@pytest.mark.parametrize("text", ["把猫变成红色", "peins le caf\u00e9 en \u201crouge\u201d", "сделай фон синим",
                                  "\u0627\u062c\u0639\u0644 \u0627\u0644\u0642\u0637 \u0623\u062d\u0645\u0631"])
def test_instructions_and_actions_in_any_language_pass_unchanged(text):
    editor = SeededNoiseEditor()
    env = make_env(editor, tasks=[Task(id="t", instruction=text, image=Image.new("RGB", (32, 32), "gray"))])
    obs, _ = env.reset(seed=0)
    assert obs["instruction"] == text and env.observation_space.contains(obs)
    assert env.action_space.contains(text)
    obs, _, _, _, info = env.step(text)
    assert info["valid_action"] is True and info["instruction"] == text
    assert editor.seen[-1] == text and obs["history"] == text


def test_info_state_is_a_fresh_copy_each_time():
    from mira_env.editors.base import STATE_KEY

    class StatefulEditor(SeededNoiseEditor):
        def edit(self, images, instructions, seeds):
            outputs = super().edit(images, instructions, seeds)
            for image, output in zip(images, outputs):
                output.info[STATE_KEY] = {"objects": [{"n": len(image.info.get(STATE_KEY, {}).get("objects", []))}]}
            return outputs

    env = make_env(StatefulEditor())
    env.reset(seed=0)
    info1 = env.step("a")[4]
    info2 = env.step("")[4]  # invalid: no edit, same current image
    assert info1["state"] == info2["state"] == {"objects": [{"n": 0}]}
    assert info1["state"] is not info2["state"]
    info2["state"]["objects"].append("corrupted by a caller")
    assert env.current_image.info[STATE_KEY] == {"objects": [{"n": 0}]}


def test_step_seeds_are_spread_and_deterministic():
    seeds = {mira_env.step_seed(e, t) for e in range(50) for t in range(10)}
    assert len(seeds) == 500
    assert mira_env.step_seed(3, 4) == mira_env.step_seed(3, 4)
    assert all(0 <= s < 2**31 - 1 for s in seeds)


def test_raw_action_text_reaches_the_reward_input():
    class Recorder(MeanBrightnessReward):
        def score(self, items):
            self.items = list(items)
            return super().score(items)

    reward = Recorder()
    env = make_env(reward=reward, max_steps=2)
    env.reset(seed=0)
    env.step("add a hat", raw_action="<think>hat first</think><edit>add a hat</edit>")
    assert not env.done
    env.step("<STOP>")
    assert env.done
    assert reward.items[0].raw_actions == ["<think>hat first</think><edit>add a hat</edit>", "<STOP>"]
    extra = env.reward_input(extra_raw_actions=["garbage"], extra_invalid=1)
    assert extra.raw_actions[-1] == "garbage" and extra.invalid_actions == 1 and extra.trajectory == ["add a hat"]


def test_an_outer_time_limit_below_the_budget_is_refused():
    env = gym.make("mira/ImageEdit-v0", editor=SeededNoiseEditor(), tasks=make_tasks(), height=32, width=32,
                   max_steps=5, max_episode_steps=2)
    with pytest.raises(ConfigError, match=r"max_episode_steps=2 \(a TimeLimit wrapper\) is below max_steps=5: it "
                                          r"would end episodes at step 2 without the final score. Pass max_steps=2"):
        env.reset(seed=0)
    same = gym.make("mira/ImageEdit-v0", editor=SeededNoiseEditor(), tasks=make_tasks(), height=32, width=32,
                    reward=MeanBrightnessReward(), max_steps=2, max_episode_steps=2)
    same.reset(seed=0)
    same.step("a")
    _, _, terminated, truncated, info = same.step("b")
    assert truncated and not terminated and info["reward_scored"] is True  # the env's own budget scored it


def test_shapes_defaults_to_the_oracle_reward():
    env = gym.make("mira/Shapes-v0", split="test")
    _, info = env.reset(seed=0)
    for text in info["task"].atomic_instructions:
        env.step(text)
    _, reward, terminated, _, info = env.step("<STOP>")
    assert terminated and info["reward_components"] == {"oracle": 1.0, "success": 1.0} and reward == 1.0
    quiet = gym.make("mira/Shapes-v0", split="test", reward=None)
    quiet.reset(seed=0)
    assert quiet.step("<STOP>")[4]["reward_components"] == {}


class _FlakyReward(MeanBrightnessReward):
    """Unscored (None) at every second call."""

    def score(self, items):
        outputs = super().score(items)
        if len(self.batches) % 2 == 0:
            return [RewardOutput(None, {"brightness": None, "steps": None}, {"brightness": "judge down"})
                    for _ in outputs]
        return outputs


def test_delta_mode_pays_nothing_for_an_unscored_step():
    reward = _FlakyReward()
    env = make_env(reward=reward, reward_mode="delta", max_steps=3)
    env.reset(seed=0)
    _, r1, _, _, info1 = env.step("one")
    first = info1["reward_total"]
    assert r1 == pytest.approx(first) and first > 0
    _, r2, _, _, info2 = env.step("two")
    assert info2["reward_scored"] is False and r2 == 0.0 and info2["reward_errors"]["brightness"] == "judge down"
    _, r3, _, _, info3 = env.step("three")
    assert r3 == pytest.approx(info3["reward_total"] - first)  # the change since the last SCORED step


@pytest.mark.parametrize("kwargs, message", [
    ({"height": 100_000}, "height=100000 is over the limit of 8192; pass a smaller value"),
    ({"max_steps": 10**9}, "max_steps=1000000000 is over the limit of 10000; pass a smaller value"),
])
def test_absurd_sizes_are_refused_before_they_cost_memory(kwargs, message):
    with pytest.raises(ConfigError, match=f"^{message}$"):
        make_env(**kwargs)


def test_an_absurd_shapes_resolution_is_refused():
    with pytest.raises(ConfigError, match=r"resolution=100000 \(type int\) is over 8192 pixels per side"):
        gym.make("mira/Shapes-v0", resolution=100_000)
