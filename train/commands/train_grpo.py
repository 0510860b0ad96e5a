"""``mira train grpo``: multi-turn GRPO against the editing environment (TRL ``GRPOTrainer``).

Flags: :class:`mira_env.train.config.ModelArguments` (TRL ``ModelConfig`` names), :class:`mira_env.train.grpo.
GRPOEnvArguments` (with the reward-model options shared with ``mira eval``) and every field of ``trl.GRPOConfig``;
the training is :func:`mira_env.train.grpo.train_grpo`.
"""

from __future__ import annotations

import argparse
import json

from mira_env.train.commands.train_sft import MODEL_OLD_FLAGS
from mira_env.train.config import ModelArguments, add_command_arguments, add_hf_dataclass_arguments, add_old_flags


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from trl import GRPOConfig

    from mira_env.train.grpo import GRPOEnvArguments

    add_command_arguments(parser, [(ModelArguments, "model"), (GRPOEnvArguments, "environment")])
    add_hf_dataclass_arguments(parser, GRPOConfig, "trl.GRPOConfig")
    add_old_flags(parser, MODEL_OLD_FLAGS)


def main(args: argparse.Namespace) -> int:
    from mira_env.train.grpo import resolve, train_grpo

    model_args, env_args, grpo_config = resolve(args)
    result = train_grpo(model_args, env_args, grpo_config)
    print(json.dumps({"output_dir": result.output_dir, **result.metrics}, indent=2))
    return 0
