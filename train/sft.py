"""``mira train sft``: supervised fine-tuning of the policy VLM on MIRA-Editing trajectories.

Read top to bottom: configs -> model -> samples -> TRL ``SFTTrainer`` -> train (or resume) -> save.

    mira train sft --tiny_vlm qwen2_5_vl --records runs/shapes-export --output_dir runs/sft --max_steps 50
    mira train sft --config sft.yaml --model_name_or_path Qwen/Qwen2.5-VL-3B-Instruct --use_peft

Settings: :class:`SFTDataArguments`, :class:`mira_env.train.config.ModelArguments` and every field of
``trl.SFTConfig`` (learning rate, batch size, epochs, checkpoints ...), from ``--config file.yaml``
and overridden on the command line.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from mira_env.agents.prompt import DEFAULT_EDIT_BUDGET
from mira_env.errors import ConfigError
from mira_env.validate import check_choice, check_int
from mira_env.train.config import ModelArguments, config_to_dict, resolve_config
from mira_env.train.data import FORMATS, LOSS_TURNS


@dataclass
class SFTDataArguments:
    """What to train on: MIRA-Editing records, rendered as per-step samples."""

    records: str | None = field(default=None, metadata={
        "help": "MIRA-Editing data: a folder with records.jsonl (e.g. from `mira export`), a records.jsonl file, a "
                "datasets folder (save_to_disk) or a hub dataset id."})
    split: str = field(default="train", metadata={"help": "Dataset split when --records is a datasets dataset."})
    sample_format: str = field(default="multi_turn", metadata={
        "help": "'multi_turn' (default): the GRPO tool conversation, which VLMAgent / APIAgent also play by default, so "
                "SFT -> GRPO -> eval is one conversation; 'single_turn': one user message with I0, It, C and the "
                "numbered history."})
    system_prompt: str | None = field(default=None, metadata={
        "help": "Replace the policy's system prompt ('' drops it); must match what GRPO / the agent uses."})
    edit_budget: int = field(default=DEFAULT_EDIT_BUDGET, metadata={
        "help": "Edit budget T shown in multi-turn tool results ('Edit k of T'); keep it equal to GRPO's "
                "max_tool_calling_iterations (default 5 in both)."})
    loss_turns: str = field(default="last", metadata={
        "help": "'last' (default): one sample per step (start / continue / stop), the loss on its answer; 'all' "
                "(multi_turn only): one sample per trajectory, the loss on every assistant answer. Same targets in "
                "the same contexts, about 1/(n+1) of the forward passes (TRL's assistant-only loss, done by the "
                "collator so the family's real chat template needs no generation tags)."})
    max_samples: int | None = field(default=None, metadata={"help": "Use only the first N samples (smoke runs)."})
    resume: str | None = field(default=None, metadata={
        "help": "Resume training: 'auto' (the last checkpoint in output_dir) or a checkpoint folder."})

    def __post_init__(self) -> None:
        check_choice("sample_format", self.sample_format, FORMATS)
        check_choice("loss_turns", self.loss_turns, LOSS_TURNS)
        if self.loss_turns == "all" and self.sample_format != "multi_turn":
            raise ConfigError(f"loss_turns='all' needs sample_format='multi_turn', got {self.sample_format!r}")
        if self.max_samples is not None and self.max_samples < 1:
            raise ConfigError(f"max_samples={self.max_samples} must be >= 1 (or unset for all samples)")
        check_int("edit_budget", self.edit_budget, hint="GRPO's max_tool_calling_iterations")


#: SFTConfig values we default differently from TRL (YAML / CLI still override them).
def _sft_defaults() -> dict[str, Any]:
    from mira_env.train.model import cuda_available

    return {"bf16": cuda_available(), "remove_unused_columns": False, "report_to": "none",
            "activation_checkpointing": False, "dataset_kwargs": {"skip_prepare_dataset": True}, "max_length": None,
            "save_strategy": "steps", "logging_steps": 1}


def resolve(args: argparse.Namespace | dict | None = None, yaml_path: str | None = None,
            **overrides: Any) -> tuple[ModelArguments, SFTDataArguments, Any]:
    """``(ModelArguments, SFTDataArguments, SFTConfig)`` from defaults <- YAML <- CLI <- overrides."""
    from trl import SFTConfig

    return tuple(resolve_config((ModelArguments, SFTDataArguments, SFTConfig), args, yaml_path, overrides,  # type: ignore[return-value]
                                defaults=_sft_defaults()))


@dataclass
class SFTResult:
    trainer: Any
    output_dir: str
    metrics: dict
    num_samples: int


def train_sft(model_args: ModelArguments, data_args: SFTDataArguments, sft_config: Any, *,
              samples: list[dict] | None = None, callbacks: list | None = None) -> SFTResult:
    """Run SFT; ``samples`` (from :func:`mira_env.train.data.build_sft_samples`) replaces ``data_args.records``."""
    from trl import SFTTrainer

    from mira_env.train.data import SFTCollator, build_sft_samples, samples_to_dataset
    from mira_env.agents.prompt import policy_record
    from mira_env.train.model import load_policy, lora_config, train_and_save

    # 1. model and processor (hub id, local folder, or a tiny offline build), with the family's MIRA chat template
    model, processor = load_policy(model_args, chat_template_path=model_args.chat_template_path)
    # 2. samples: start / continue / stop per trajectory
    if samples is None:
        if data_args.records is None:
            raise ConfigError("no training data: pass --records <MIRA-Editing folder | records.jsonl | dataset>")
        samples = build_sft_samples(data_args.records, format=data_args.sample_format,
                                    system_prompt=data_args.system_prompt, max_steps=data_args.edit_budget,
                                    split=data_args.split, loss_turns=data_args.loss_turns)
    if data_args.max_samples is not None:
        samples = samples[: data_args.max_samples]
    if not samples:
        raise ConfigError(f"no SFT samples in {data_args.records!r}")
    # 3. TRL SFTTrainer with our collator (loss on the answer tokens only)
    trainer = SFTTrainer(model=model, args=sft_config, train_dataset=samples_to_dataset(samples), processing_class=processor,
                         data_collator=SFTCollator(processor), peft_config=lora_config(model_args),
                         callbacks=callbacks)
    # 4. train (resuming when asked) and save the final model and processor
    policy = policy_record(data_args.sample_format, data_args.edit_budget, data_args.system_prompt)
    metrics = train_and_save(trainer, processor, sft_config.output_dir, data_args.resume,
                             config_to_dict(model_args, data_args), "mira_sft_config.json", policy=policy)
    return SFTResult(trainer=trainer, output_dir=str(sft_config.output_dir), metrics=metrics,
                     num_samples=len(samples))
