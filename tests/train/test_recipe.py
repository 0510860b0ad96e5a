"""The recipe of docs/training.md, run as written (small sizes) on a tiny replica with the REAL Qwen2.5-VL template:
export -> sft -> grpo -> eval of the GRPO checkpoint, one conversation throughout. The GRPO step calls the editor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

RECIPE = [
    "export --out data/smoke --split train --num_tasks 2 --difficulty 1",
    "train sft --tiny_vlm qwen2_5_vl --records data/smoke --output_dir ckpt/sft-smoke --max_steps 100 "
    "--learning_rate 1e-2 --lr_scheduler_type cosine --per_device_train_batch_size 4 --use_cpu true",
    "train grpo --model_name_or_path ckpt/sft-smoke --reward composite --num_tasks 2 --difficulty 1 --output_dir ckpt/grpo-smoke "
    "--max_steps 1 --use_cpu true --temperature 0.5",
    "eval --agents vlm:ckpt/grpo-smoke --tasks 2",
]
#: what the test adds to the last command: a fixed output folder, no progress bars
EVAL_EXTRA = " --out evals/smoke --progress false"


def test_the_docs_recipe_is_the_one_tested():
    text = " ".join((Path(__file__).parents[2] / "docs" / "training.md").read_text().replace("\\\n", " ").split())
    for command in RECIPE:
        assert f"mira {' '.join(command.split())}" in text, command


@pytest.mark.timeout(1200)
def test_export_sft_grpo_eval_in_one_conversation(tmp_path, monkeypatch, caplog):
    import logging

    from mira_env.agents.families import FAMILIES
    from mira_env.agents.prompt import read_policy_record
    from mira_env.train.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MIRA_TINY_CACHE", str(tmp_path / "tiny"))
    with caplog.at_level(logging.WARNING, logger="mira_env.agents.families"):
        for command in RECIPE[:-1] + [RECIPE[-1] + EVAL_EXTRA]:
            assert main(command.split()) == 0, command
    # the --tiny base carries the REAL Qwen2.5-VL template: SFT applied the family's, and logged it
    assert "cannot render the MIRA tool conversation" in caplog.text
    template = (tmp_path / "ckpt/grpo-smoke/chat_template.jinja").read_text()
    assert template == FAMILIES["qwen2_5_vl"].chat_template()
    # one conversation: SFT's default samples, GRPO, and what the agent plays for the GRPO checkpoint
    for folder in ("ckpt/sft-smoke", "ckpt/grpo-smoke", "ckpt/grpo-smoke/checkpoint-1"):
        assert read_policy_record(tmp_path / folder) == {"conversation": "multi_turn", "edit_budget": 5,
                                                         "system_prompt": None}, folder
    # the smoke GRPO step exercised the loop it advertises: the editor was called and rewards differ
    (log,) = [e for e in json.loads((tmp_path / "ckpt/grpo-smoke/checkpoint-1/trainer_state.json").read_text())
              ["log_history"] if "tools/call_frequency" in e]
    assert log["tools/call_frequency"] > 0, log
    assert log["rewards/mira_reward/std"] > 0, log
    metrics = json.loads((tmp_path / "evals/smoke/metrics.json").read_text())
    assert "vlm:ckpt/grpo-smoke" in json.dumps(metrics)
