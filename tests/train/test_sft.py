"""CPU smoke test of `mira train sft` on a tiny offline Qwen2.5-VL: it learns, checkpoints, resumes."""

from __future__ import annotations

import math
from pathlib import Path

import torch


def test_sft_learns_the_answers_and_checkpoints(sft_run):
    result, samples, initial = sft_run
    losses = [entry["loss"] for entry in result.trainer.state.log_history if "loss" in entry]
    assert len(losses) == 60 and all(math.isfinite(x) for x in losses)
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5  # the answers are learned, not just nudged
    trained = result.trainer.model.state_dict()
    changed = [k for k, v in initial.items() if not torch.equal(v, trained[k].detach().cpu())]
    assert any("language_model" in k for k in changed) and any("visual" in k for k in changed)
    out = Path(result.output_dir)
    assert (out / "checkpoint-30").is_dir() and (out / "checkpoint-60").is_dir()
    assert (out / "model.safetensors").is_file() and (out / "mira_sft_config.json").is_file()


def test_sft_policy_answers_in_the_format(sft_run):
    """Greedy answers of the trained policy on its own training prompts: it has learned WHEN to edit and
    when to stop (the tiny 32-wide model does not spell the instruction out in 60 steps)."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from mira_env.actions import parse_action
    from mira_env.train.data import fill_images
    from mira_env.train.tools import tool_schemas

    result, samples, _ = sft_run
    processor = AutoProcessor.from_pretrained(result.output_dir)
    model = AutoModelForImageTextToText.from_pretrained(result.output_dir).eval()
    for sample in samples[:2]:
        inputs = processor.apply_chat_template(fill_images(sample["prompt"], sample["images"]), tools=tool_schemas(),
                                               add_generation_prompt=True, tokenize=True, return_dict=True,
                                               return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=32, do_sample=False)
        text = processor.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        expected = "<STOP>" if sample["kind"] == "stop" else "<edit>"
        assert text.strip().startswith(expected), (text, sample["kind"])
        assert parse_action(text).ok == (sample["kind"] == "stop") or parse_action(text).ok


def test_sft_resumes_from_the_last_checkpoint(sft_run):
    from mira_env.train.sft import resolve, train_sft

    result, samples, _ = sft_run
    model_args, data_args, config = resolve({
        "model": str(Path(result.output_dir) / "checkpoint-30"), "output_dir": result.output_dir, "max_steps": 62,
        "per_device_train_batch_size": 4, "learning_rate": 1e-2, "save_steps": 30, "logging_steps": 1,
        "sample_format": "multi_turn", "system_prompt": "", "resume": "auto"})
    resumed = train_sft(model_args, data_args, config, samples=samples)
    steps = [entry["step"] for entry in resumed.trainer.state.log_history if "loss" in entry]
    assert resumed.trainer.state.global_step == 62
    assert steps[-2:] == [61, 62] and 60 in steps  # history restored from checkpoint-60, then 2 new steps
