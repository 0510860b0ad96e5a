"""Config plumbing: dataclasses + YAML + CLI overrides, TRL's configs exposed, cross-field checks."""

from __future__ import annotations

import argparse

import pytest

from mira_env.errors import ConfigError
from mira_env.train.config import ModelArguments, resolve_config


def _parse(module, argv):
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser.parse_args(argv)


def _command(name):
    import importlib

    return importlib.import_module(f"mira_env.train.commands.train_{name}")


def test_grpo_yaml_then_cli_override(tmp_path):
    from mira_env.train import grpo

    config = tmp_path / "run.yaml"
    config.write_text("tiny_vlm: qwen2_5_vl\nnum_generations: 4\nbeta: 0.1\nlearning_rate: 0.001\n"
                      "max_tool_calling_iterations: 3\nnum_tasks: 7\nvllm_mode: server\n")
    args = _parse(_command("grpo"), ["--config", str(config), "--beta", "0.02", "--num_tasks", "9", "--output_dir", str(tmp_path)])
    model_args, env_args, trl_config = grpo.resolve(args)
    assert model_args.tiny_vlm == "qwen2_5_vl"
    assert (trl_config.num_generations, trl_config.learning_rate, trl_config.vllm_mode) == (4, 0.001, "server")
    assert trl_config.beta == 0.02 and env_args.num_tasks == 9  # the CLI wins over YAML
    assert trl_config.max_tool_calling_iterations == 3
    assert trl_config.bf16 is False  # no CUDA here: our default


def test_sft_cli_exposes_sft_config(tmp_path):
    from mira_env.train import sft

    args = _parse(_command("sft"), ["--model_name_or_path", "some/hub-id", "--use_peft", "--lora_r", "4",
                                    "--num_train_epochs", "2", "--output_dir", str(tmp_path), "--sample_format",
                                    "multi_turn"])
    model_args, data_args, trl_config = sft.resolve(args)
    assert (model_args.model_name_or_path, model_args.use_peft, model_args.lora_r) == ("some/hub-id", True, 4)
    assert trl_config.num_train_epochs == 2 and data_args.sample_format == "multi_turn"


@pytest.mark.parametrize("values, message", [
    ({}, "give exactly one of --model_name_or_path"),
    ({"model_name_or_path": "a", "tiny_vlm": "qwen2_5_vl"}, "give exactly one of --model_name_or_path"),
    ({"tiny_vlm": "llama"}, "tiny_vlm='llama' (type str) is not one of: 'qwen2_5_vl', 'qwen3_vl'"),
    ({"tiny_vlm": "qwen2_5_vl", "use_peft": True, "lora_target_modules": ["lm_head"]}, "must not contain 'lm_head'"),
])
def test_model_arguments_cross_checks(values, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ModelArguments(**values)


@pytest.mark.parametrize("values, message", [
    ({"reward": "composite", "reward_terms": ["a", "b"], "reward_weights": [1.0]}, "give one weight per term"),
    ({"tasks": "tasks.jsonl", "reward": "oracle"}, "needs the shapes world"),
    ({"editor_noise": 1.5}, "must be a probability"),
])
def test_grpo_env_arguments_cross_checks(values, message):
    from mira_env.train.grpo import GRPOEnvArguments

    with pytest.raises(ConfigError, match=message):
        GRPOEnvArguments(**values)


def test_unknown_setting_is_named():
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) \['tinny'\]"):
        resolve_config((ModelArguments,), {"tinny": "qwen2_5_vl"})


def test_turn_budget_must_be_set(tmp_path):
    from mira_env.train import grpo

    with pytest.raises(ConfigError, match="max_tool_calling_iterations is the edit budget"):
        grpo.resolve({"tiny_vlm": "qwen2_5_vl", "output_dir": str(tmp_path), "max_tool_calling_iterations": 0})
