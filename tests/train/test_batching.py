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
from mira_env.train.batching import PrefetchEditor, check_trl_version
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
    assert len(editor.calls) == iterations == trainer.tool_iterations, (editor.calls, edits)
    proxy = next(iter(trainer._prefetchers.values()))
    assert proxy.fallback_calls == 0
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


def test_prefetch_editor_hands_each_result_out_once():
    inner = CountingEditor()
    proxy = PrefetchEditor(inner)
    image = Image.new("RGB", (16, 16), (10, 20, 30))
    proxy.prefetch([image, image, image], ["a", "a", "b"], [1, 1, 1])
    assert inner.calls == [2]  # deduplicated
    first = proxy.edit([image], ["a"], [1])
    second = proxy.edit([image, image], ["a", "b"], [1, 1])
    assert inner.calls == [2] and first[0] is not second[0]
    proxy.edit([image], ["a"], [1])  # a third "a" was never prefetched: it runs on its own
    assert inner.calls == [2, 1] and proxy.fallback_calls == 1


def test_trl_version_range():
    assert check_trl_version("1.16.3") == "1.16.3"
    with pytest.raises(ConfigError, match="relies on TRL internals of versions >=1.16,<1.17"):
        check_trl_version("1.17.0")
