"""BatchedToolGRPOTrainer: one editor call per tool iteration of a GRPO step, not one per rollout.

The SFT'd tiny policy (tests/train/conftest.py) answers ``<edit>...</edit>`` at its first turn, so a step of
G=4 rollouts x 2 turns makes real tool calls through TRL 1.16's ``_tool_call_loop``.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mira_env.editors.base import EditorInfo, check_batch
from mira_env.env import EditEnv
from mira_env.errors import ConfigError
from mira_env.train.batching import IterationEditor, check_trl_version
from tests.train.conftest import make_tasks
from tests.train.test_grpo import _grpo


class CountingEditor:
    """Deterministic per (image, instruction, seed): brightens a band by a seed-dependent amount."""

    def __init__(self) -> None:
        self.info = EditorInfo(name="counting")
        self.calls: list[int] = []

    def edit(self, images, instructions, seeds):
        check_batch(images, instructions, seeds)
        self.calls.append(len(images))
        out = []
        for image, text, seed in zip(images, instructions, seeds):
            array = np.asarray(image.convert("RGB")).copy()
            array[:8] = (seed * 7 + len(text)) % 256
            out.append(Image.fromarray(array))
        return out


@pytest.fixture(scope="module")
def batched_run(sft_run, tmp_path_factory, monkeypatch_module):
    import trl

    from mira_env.train.batching import BatchedToolGRPOTrainer

    monkeypatch_module.setattr(trl, "GRPOTrainer", BatchedToolGRPOTrainer)
    sft, _, _ = sft_run
    editor = CountingEditor()
    result, _ = _grpo(sft.output_dir, tmp_path_factory.mktemp("grpo_batched"), editor, max_steps=1)
    return result, editor


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_one_editor_call_per_tool_iteration(batched_run):
    result, editor = batched_run
    trainer = result.trainer
    tool_envs = trainer.environments
    edits = [len(env.steps) for env in tool_envs]
    iterations = max(edits)
    assert sum(edits) > iterations >= 1, edits  # several rollouts edited in the same iteration
    assert iterations == trainer.tool_iterations, (edits, trainer.tool_iterations)
    runner = next(iter(trainer._iteration_editors.values()))
    # one editor call per iteration (an iteration whose edits were all invalid calls nothing)
    assert len(editor.calls) == runner.calls <= iterations, (editor.calls, edits)
    # a group shares I0 and the editor seeds: identical first edits ran once
    assert sum(editor.calls) <= sum(edits)


def test_batched_results_equal_a_sequential_replay(batched_run):
    result, _ = batched_run
    for tool_env in result.trainer.environments:
        replay = EditEnv(editor=CountingEditor(), tasks=make_tasks(2), max_steps=2, height=48, width=48)
        replay.reset(options={"task": tool_env.row["task_id"], "editor_seed": tool_env.row["editor_seed"]})
        for step in tool_env.steps:
            replay.step(step["instruction"])
        assert np.array_equal(np.asarray(replay.current_image), np.asarray(tool_env.env.current_image))


def test_iteration_editor_deduplicates_only_deterministic_editors():
    inner = CountingEditor()
    image = Image.new("RGB", (8, 8))
    runner = IterationEditor(inner)
    out = runner.edit([image, image, image], ["a", "a", "b"], [1, 1, 1])
    assert inner.calls == [2] and runner.calls == 1 and len(out) == 3
    assert np.array_equal(np.asarray(out[0]), np.asarray(out[1]))
    inner.info = EditorInfo(name="counting", deterministic=False)
    IterationEditor(inner).edit([image, image], ["a", "a"], [1, 1])
    assert inner.calls == [2, 2]


def test_trl_version_range():
    assert check_trl_version("1.16.3") == "1.16.3"
    with pytest.raises(ConfigError, match="relies on TRL internals of versions >=1.16,<1.17"):
        check_trl_version("1.17.0")


class CountingStepReward:
    """A real reward scored at every step: the mean brightness of the top band; records each call's items."""

    component_names = ("brightness",)

    def __init__(self) -> None:
        self.calls: list[list[str]] = []  # per call: the last raw action of each item

    def score(self, items):
        from mira_env.reward_api import RewardOutput

        self.calls.append([item.raw_actions[-1] if item.raw_actions else "" for item in items])
        return [RewardOutput(float(np.asarray(item.edited)[:16].mean() / 255.0),
                             {"brightness": float(np.asarray(item.edited)[:16].mean() / 255.0)}) for item in items]


def test_step_rewards_are_scored_in_one_call_per_tool_iteration(sft_run, tmp_path, monkeypatch):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from mira_env.train.grpo import build_dataset, resolve, train_grpo

    sft, _, _ = sft_run
    reward = CountingStepReward()
    env = EditEnv(editor=CountingEditor(), tasks=make_tasks(2), reward=reward, max_steps=2, height=48, width=48,
                  reward_mode="every_step")
    model = AutoModelForImageTextToText.from_pretrained(sft.output_dir)
    model.config.text_config.max_position_embeddings = 8192  # see tests/train/test_grpo.py::_grpo
    model_args, env_args, config = resolve({
        "model": str(sft.output_dir), "output_dir": str(tmp_path), "max_steps": 1, "num_generations": 4,
        "per_device_train_batch_size": 4, "max_tool_calling_iterations": 2, "max_completion_length": 1024,
        "temperature": 1.0, "learning_rate": 1e-3, "save_steps": 1, "logging_steps": 1, "seed": 0,
        "tasks": "custom", "reward": "composite", "system_prompt": ""})
    result = train_grpo(model_args, env_args, config, env=env, dataset=build_dataset(env, num_rows=4, system_prompt=""),
                        model=model, processor=AutoProcessor.from_pretrained(sft.output_dir))
    trainer = result.trainer
    edits = [len(e.steps) for e in trainer.environments]
    assert sum(edits) > max(edits) >= 1, edits  # several rollouts edited in one iteration
    # the calls made while TRL's tool loop ran: items are edit steps (raw action <edit>...</edit>)
    tool_calls = [c for c in reward.calls if all(raw.startswith("<edit>") for raw in c)]
    assert len(tool_calls) == trainer.tool_iterations == max(edits), (reward.calls, edits)
    assert sum(len(c) for c in tool_calls) == sum(edits)
    # every edit step carries the score of its own state
    assert all(step["reward_total"] is not None for e in trainer.environments for step in e.steps)


def test_finish_episodes_scores_the_closing_stops_in_one_call_like_finish_episode():
    from mira_env.train.tools import EditingToolEnv, finish_episode, finish_episodes

    def rollouts(reward):
        envs = []
        for k in range(4):
            tool = EditingToolEnv(EditEnv(editor=CountingEditor(), tasks=make_tasks(2), reward=reward, max_steps=2,
                                          height=48, width=48))
            tool.reset(task_id="task-0", editor_seed=5)
            if k % 2:
                tool.edit("paint it red")
            envs.append(tool)
        return envs

    texts = ["<STOP>", "<STOP>", "not an answer", "<edit>paint it blue</edit>"]
    batched_reward, single_reward = CountingStepReward(), CountingStepReward()
    batched = finish_episodes(rollouts(batched_reward), texts)
    single = [finish_episode(tool, text) for tool, text in zip(rollouts(single_reward), texts)]
    assert [o.total for o in batched] == [o.total for o in single]
    assert [o.components for o in batched] == [o.components for o in single]
    assert [len(c) for c in batched_reward.calls] == [2, 1, 1]  # both <STOP>s in one call, then the others
    assert [len(c) for c in single_reward.calls] == [1, 1, 1, 1]
