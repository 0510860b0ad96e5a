"""`mira train grpo` on CPU with a tiny offline Qwen2.5-VL (SFT'd to answer <edit>, then <STOP>).

The central test PROVES the multi-turn image path with forward pre-hooks on the real model:

- on the vision tower (``model.model.visual``): every image is encoded there, both at generation
  (transformers 5 ``generate`` encodes the images up front and its decoding forwards receive
  ``mm_encoder_outputs``, never ``pixel_values``: a hook on the top-level forward sees no generation
  images) and in the loss forward. Every image the editor produced is encoded under ``no_grad`` after
  that edit (the policy's next turn) and under grad (the loss);
- on the top-level forward (the loss forward, grad enabled): the ``pixel_values`` hold every editor output
  with exactly as many ``<|image_pad|>`` tokens as the images' grids need.

Why it used to fail: the byte-level tiny tokenizer makes the tool prompt ~1040 tokens, and TRL drops
the tool results of any sequence that reaches ``max_position_embeddings`` (1024 in the tiny build), so no
editor image ever reached the next turn or the loss. ``_grpo`` raises the limit.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mira_env.env import EditEnv
from mira_env.reward_api import RewardOutput
from tests.train.conftest import StampEditor, make_tasks


class EditAndBrightnessReward:
    """Real reward: 1 for one edit then <STOP>, plus a small image term (top band brightness) so the
    rollouts of a group differ; components: edits, stopped, brightness."""

    def score(self, items):
        outputs = []
        for item in items:
            edits, stopped = float(len(item.trajectory)), float(item.terminated)
            brightness = float(np.asarray(item.edited)[:16].mean() / 255.0)
            total = float(edits == 1) * (0.5 + 0.5 * stopped) + 0.2 * brightness
            outputs.append(RewardOutput(total, {"edits": edits, "stopped": stopped, "brightness": brightness}))
        return outputs


def _grpo(policy_dir, output_dir, editor, *, max_steps, resume=None, hook=None, callbacks=None,
          max_completion_length=1024):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from mira_env.train.grpo import build_dataset, resolve, train_grpo

    env = EditEnv(editor=editor, tasks=make_tasks(2), reward=EditAndBrightnessReward(), max_steps=2,
                  height=48, width=48)
    dataset = build_dataset(env, num_rows=4, system_prompt="")
    model = AutoModelForImageTextToText.from_pretrained(policy_dir)
    # The byte-level tiny tokenizer makes the tool prompt ~1040 tokens; TRL drops every tool result of a
    # sequence that reaches max_position_embeddings (1024 in the tiny build), so give the context room.
    model.config.text_config.max_position_embeddings = 8192
    processor = AutoProcessor.from_pretrained(policy_dir)
    if hook is not None:
        top, visual = hook
        model.register_forward_pre_hook(top, with_kwargs=True)
        model.model.visual.register_forward_pre_hook(visual, with_kwargs=True)
    model_args, env_args, config = resolve({
        "model": str(policy_dir), "output_dir": str(output_dir), "max_steps": max_steps, "num_generations": 4,
        "per_device_train_batch_size": 4, "max_tool_calling_iterations": 2,
        "max_completion_length": max_completion_length,
        "temperature": 1.0, "learning_rate": 1e-3, "save_steps": 1, "logging_steps": 1, "seed": 0,
        "tasks": "custom", "reward": "composite", "system_prompt": "", "resume": resume})
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    torch.manual_seed(0)
    result = train_grpo(model_args, env_args, config, env=env, dataset=dataset, model=model, processor=processor,
                        callbacks=callbacks)
    return result, before


def _contains(haystack: torch.Tensor, needle: torch.Tensor) -> bool:
    starts = torch.nonzero(torch.all(haystack == needle[0], dim=1)).flatten().tolist()
    return any(s + len(needle) <= len(haystack) and torch.equal(haystack[s:s + len(needle)], needle) for s in starts)


@pytest.fixture(scope="module")
def grpo_run(sft_run, tmp_path_factory):
    sft, _, _ = sft_run
    editor = StampEditor()
    events = []

    def top(module, args, kwargs):  # the model's forward: records the loss forward's inputs
        if kwargs.get("pixel_values") is not None:
            events.append({"where": "forward", "grad": torch.is_grad_enabled(),
                           "pixel_values": kwargs["pixel_values"].detach().clone(),
                           "input_ids": kwargs["input_ids"].detach().clone(),
                           "grid": kwargs["image_grid_thw"].detach().clone(), "edits_done": len(editor.outputs)})

    def visual(module, args, kwargs):  # the vision tower: every image encoding, generation and loss alike
        pixels = args[0] if args else kwargs["hidden_states"]
        events.append({"where": "visual", "grad": torch.is_grad_enabled(), "pixel_values": pixels.detach().clone(),
                       "grid": kwargs["grid_thw"].detach().clone(), "edits_done": len(editor.outputs)})

    hook = (top, visual)
    out = tmp_path_factory.mktemp("grpo")
    result, before = _grpo(sft.output_dir, out, editor, max_steps=1, hook=hook)
    return result, before, editor, events, out


def test_editor_images_reach_the_next_turn_and_the_loss(grpo_run):
    result, _, editor, events, _ = grpo_run
    processor = result.trainer.processing_class
    assert editor.outputs, "the policy never called the edit tool"
    generation = [e for e in events if e["where"] == "visual" and not e["grad"]]
    loss_visual = [e for e in events if e["where"] == "visual" and e["grad"]]
    loss = [e for e in events if e["where"] == "forward" and e["grad"]]
    assert generation and loss and loss_visual, [(e["where"], e["grad"], e["edits_done"]) for e in events]
    for index, image in enumerate(editor.outputs):
        # the processor's encoding of the editor's output image, row for row
        pixels = processor.image_processor(images=[image], return_tensors="pt")["pixel_values"]
        assert any(e["edits_done"] > index and _contains(e["pixel_values"], pixels) for e in generation), \
            f"editor output {index} was never shown to the policy at a later turn"
        assert any(_contains(e["pixel_values"], pixels) for e in loss), f"editor output {index} is not in the loss"
        assert any(_contains(e["pixel_values"], pixels) for e in loss_visual), \
            f"editor output {index} is not encoded by the vision tower in the loss forward"
    image_token = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    merge = processor.image_processor.merge_size ** 2
    for event in loss:  # no image was dropped: tokens match the images' grids, prompts + every tool image
        assert int((event["input_ids"] == image_token).sum()) == int(event["grid"].prod(-1).sum()) // merge
    assert sum(e["grid"].shape[0] for e in loss) == 2 * 4 + len(editor.outputs)
    # the turn after an edit saw the edited image: some generation encoded more images than the prompts' 2 each
    assert max(e["grid"].shape[0] for e in generation) > 2 * 4


def test_rewards_components_and_episode_stats_are_logged(grpo_run):
    result, before, _, _, out = grpo_run
    log = result.trainer.state.log_history[0]
    for key in ("rewards/mira_reward/mean", "reward/edits", "reward/stopped", "reward/brightness", "episode/edits",
                "episode/stopped", "tools/call_frequency"):
        assert key in log and math.isfinite(log[key]), key
    assert log["tools/call_frequency"] > 0 and log["episode/edits"] > 0
    assert math.isfinite(log["loss"])
    # the logged component means are the means of what the reward function returned this step
    history = result.reward.history[0]
    assert history["reward/edits"] == pytest.approx(log["reward/edits"])
    trained = result.trainer.model.state_dict()
    assert any(not torch.equal(v, trained[k]) for k, v in before.items())
    assert (Path(out) / "checkpoint-1").is_dir()


def test_grpo_resumes_the_checkpoints_weights_from_the_base_path(grpo_run, sft_run):
    """Resume from the run's BASE policy (the SFT folder), never the checkpoint: the first new step starts from
    checkpoint-1's weights."""
    from tests.train.conftest import FirstStepWeights, checkpoint_weights

    sft, _, _ = sft_run
    _, before, _, _, out = grpo_run
    probe = FirstStepWeights()
    result, _ = _grpo(sft.output_dir, out, StampEditor(), max_steps=2, resume="auto", callbacks=[probe])
    saved = checkpoint_weights(Path(out) / "checkpoint-1")
    assert probe.step == 1 and all(torch.equal(probe.weights[k], saved[k]) for k in saved)
    assert any(not torch.equal(saved[k], before[k]) for k in saved)  # checkpoint-1 is not the start
    assert result.trainer.state.global_step == 2
    steps = [entry["step"] for entry in result.trainer.state.log_history if "loss" in entry]
    assert steps == [1, 2]  # step 1 restored from checkpoint-1, step 2 trained now
    assert (Path(out) / "checkpoint-2").is_dir()


def test_grpo_starts_from_the_real_qwen2_5_vl_template(tiny_path, tmp_path, caplog):
    """A Qwen2.5-VL checkpoint with the REAL Qwen2.5-VL template (no tools: GRPOTrainer used to refuse it) trains;
    the family's template is applied, logged and saved into every checkpoint with the policy record."""
    import json
    import logging

    from transformers import AutoProcessor
    from trl.chat_template_utils import supports_tool_calling

    from mira_env.agents.families import FAMILIES

    family = FAMILIES["qwen2_5_vl"]
    assert AutoProcessor.from_pretrained(tiny_path).chat_template == family.upstream_chat_template()
    assert not supports_tool_calling(AutoProcessor.from_pretrained(tiny_path))
    with caplog.at_level(logging.WARNING, logger="mira_env.agents.families"):
        result, _ = _grpo(tiny_path, tmp_path, StampEditor(), max_steps=1, max_completion_length=16)
    assert "using the qwen2_5_vl family's template" in caplog.text
    assert result.trainer.state.global_step == 1
    for folder in (tmp_path, tmp_path / "checkpoint-1"):
        assert AutoProcessor.from_pretrained(folder).chat_template == family.chat_template()
        assert json.loads((folder / "mira_policy.json").read_text()) == {
            "conversation": "multi_turn", "edit_budget": 2, "system_prompt": ""}
