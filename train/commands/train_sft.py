"""``mira train sft``: supervised fine-tuning on MIRA-Editing trajectories (TRL ``SFTTrainer``).

Flags: :class:`mira_env.train.config.ModelArguments` (TRL ``ModelConfig`` names), :class:`mira_env.train.sft.
SFTDataArguments` and every field of ``trl.SFTConfig``; the training is :func:`mira_env.train.sft.train_sft`.
"""

from __future__ import annotations

import argparse
import json

from mira_env.train.config import (MODEL_OLD_FLAGS_NAMES, ModelArguments, OldFlag, add_command_arguments,
                                   add_hf_dataclass_arguments, add_old_flags)

#: the old ModelArguments spellings (--model, --use_lora, --tiny), for sft and grpo
MODEL_OLD_FLAGS = [OldFlag(flag, name) for flag, name in MODEL_OLD_FLAGS_NAMES]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from trl import SFTConfig

    from mira_env.train.sft import SFTDataArguments

    add_command_arguments(parser, [(ModelArguments, "model"), (SFTDataArguments, "data")])
    add_hf_dataclass_arguments(parser, SFTConfig, "trl.SFTConfig")
    add_old_flags(parser, MODEL_OLD_FLAGS)


def main(args: argparse.Namespace) -> int:
    from mira_env.train.sft import resolve, train_sft

    model_args, data_args, sft_config = resolve(args)
    result = train_sft(model_args, data_args, sft_config)
    print(json.dumps({"output_dir": result.output_dir, "samples": result.num_samples, **result.metrics}, indent=2))
    return 0
