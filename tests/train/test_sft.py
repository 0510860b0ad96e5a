"""CPU smoke test of `mira train sft` on a tiny offline Qwen2.5-VL: it learns, checkpoints, resumes."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
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


def test_the_agents_tool_schema_is_what_grpo_renders():
    from mira_env.agents.families import EDIT_TOOL_SCHEMA
    from mira_env.train.tools import tool_schemas

    assert tool_schemas() == [EDIT_TOOL_SCHEMA]


def _resume_args(result, tiny_path, **changes):
    from mira_env.train.sft import resolve

    values = {"model": str(tiny_path), "output_dir": result.output_dir, "max_steps": 62,
              "per_device_train_batch_size": 4, "learning_rate": 1e-2, "save_steps": 30, "logging_steps": 1,
              "seed": 0, "sample_format": "multi_turn", "system_prompt": "", "lr_scheduler_type": "constant",
              "resume": "auto", **changes}
    return resolve(values)


def test_sft_resumes_the_checkpoints_weights_from_the_base_path(sft_run, tiny_path):
    """Resume from the BASE model path (never the checkpoint): the first new step starts from checkpoint-60's
    weights, not from the base weights the model was built with."""
    from mira_env.train.sft import train_sft
    from tests.train.conftest import FirstStepWeights, checkpoint_weights

    result, samples, initial = sft_run
    probe = FirstStepWeights()
    resumed = train_sft(*_resume_args(result, tiny_path), samples=samples, callbacks=[probe])
    saved = checkpoint_weights(Path(result.output_dir) / "checkpoint-60")
    assert probe.step == 60 and set(probe.weights) == set(saved)
    assert all(torch.equal(probe.weights[k], saved[k]) for k in saved)
    assert any(not torch.equal(probe.weights[k], initial[k]) for k in saved)
    steps = [entry["step"] for entry in resumed.trainer.state.log_history if "loss" in entry]
    assert resumed.trainer.state.global_step == 62
    assert steps[-2:] == [61, 62] and 60 in steps  # history restored from checkpoint-60, then 2 new steps


def test_sft_resume_refuses_other_settings(sft_run, tiny_path):
    from mira_env.train.model import ResumeError
    from mira_env.train.sft import train_sft

    result, samples, _ = sft_run
    record = (Path(result.output_dir) / "mira_sft_config.json").read_text()
    with pytest.raises(ResumeError, match=r"cannot resume the run in .*: its settings differ in \['learning_rate'\] "
                                          r"\(learning_rate: 0.01 -> 0.005\)"):
        train_sft(*_resume_args(result, tiny_path, learning_rate=5e-3, max_steps=70), samples=samples)
    with pytest.raises(ResumeError, match="is at step 62 and max_steps=62: nothing to train; raise --max_steps"):
        train_sft(*_resume_args(result, tiny_path), samples=samples)
    assert (Path(result.output_dir) / "mira_sft_config.json").read_text() == record  # not rewritten


def test_sft_records_the_conversation_and_ships_the_family_template(sft_run):
    import json

    from transformers import AutoProcessor

    from mira_env.agents.families import FAMILIES

    result, _, _ = sft_run
    out = Path(result.output_dir)
    for folder in (out, out / "checkpoint-30"):
        assert json.loads((folder / "mira_policy.json").read_text()) == {
            "conversation": "multi_turn", "edit_budget": 5, "system_prompt": ""}
        assert AutoProcessor.from_pretrained(folder).chat_template == FAMILIES["qwen2_5_vl"].chat_template()


def test_torn_last_checkpoint_falls_back_to_the_previous(tmp_path, caplog):
    import json
    import logging

    from mira_env.train.model import find_resume_checkpoint

    for step, files in ((1, ("model.safetensors", "optimizer.pt", "scheduler.pt")), (2, ("model.safetensors",)),
                        (3, ())):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}) if step != 3 else "{tor")
        for name in files:
            (folder / name).write_bytes(b"x")
    with caplog.at_level(logging.WARNING, logger="mira_env.train.model"):
        assert find_resume_checkpoint(tmp_path) == str(tmp_path / "checkpoint-1")
    assert "skipping the torn checkpoint" in caplog.text and "checkpoint-3 (no readable trainer_state.json" in caplog.text
    assert "checkpoint-2 (no optimizer.pt / scheduler.pt)" in caplog.text
    assert find_resume_checkpoint(tmp_path / "nothing") is None


def test_lora_sft_resumes_the_adapter(tiny_path, tmp_path):
    from safetensors.torch import load_file

    from mira_env.train.data import record_samples
    from mira_env.train.sft import resolve, train_sft
    from tests.train.conftest import FirstStepWeights, make_record

    samples = record_samples(make_record(0, ["paint it red"]), system_prompt="")
    values = {"model": str(tiny_path), "output_dir": str(tmp_path), "max_steps": 2, "per_device_train_batch_size": 2,
              "learning_rate": 1e-2, "save_steps": 1, "seed": 0, "system_prompt": "", "use_lora": True,
              "lora_r": 4, "lr_scheduler_type": "constant"}
    train_sft(*resolve(values), samples=samples)
    probe = FirstStepWeights()
    resumed = train_sft(*resolve({**values, "max_steps": 3, "resume": "auto"}), samples=samples, callbacks=[probe])
    saved = load_file(str(tmp_path / "checkpoint-2" / "adapter_model.safetensors"))
    live = {k.replace(".default", ""): v for k, v in probe.weights.items() if "lora_" in k}
    assert saved and probe.step == 2
    for key, value in saved.items():
        match = [k for k in live if k.endswith(key.split("base_model.model.", 1)[-1])]
        assert len(match) == 1, key
        assert torch.equal(live[match[0]], value), key
    assert resumed.trainer.state.global_step == 3
