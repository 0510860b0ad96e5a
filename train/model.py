"""Loading the policy VLM (hub id, local folder, or a tiny offline build) and its LoRA config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mira_env.train.config import ModelArguments


def resolve_model_path(args: ModelArguments) -> str:
    """The hub id / folder to load: ``args.model``, or a tiny model built offline for ``args.tiny``."""
    if args.tiny is None:
        return str(args.model)
    from mira_env.tiny.vlm import build_tiny_vlm

    return str(build_tiny_vlm(args.tiny, path=Path(args.tiny_path) if args.tiny_path else None))


def torch_dtype(name: str):
    import torch

    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_available() else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def load_policy(args: ModelArguments) -> tuple[Any, Any]:
    """``(model, processor)`` through ``from_pretrained`` (the path a real hub id takes)."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = resolve_model_path(args)
    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch_dtype(args.dtype))
    return model, processor


def lora_config(args: ModelArguments):
    """A PEFT ``LoraConfig`` for ``args`` (``None`` without ``use_lora``)."""
    if not args.use_lora:
        return None
    from peft import LoraConfig

    return LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                      target_modules=list(args.lora_target_modules), task_type="CAUSAL_LM")


def generation_suppression(processor: Any) -> dict:
    """``generation_kwargs`` that keep a policy from sampling image / video placeholder tokens."""
    from mira_env.tiny.vlm import suppress_token_ids

    ids = suppress_token_ids(processor)
    return {"suppress_tokens": ids} if ids else {}


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def train_and_save(trainer: Any, processor: Any, output_dir: str, resume: str | None,
                   settings: dict, settings_file: str) -> dict:
    """Record ``settings`` as ``output_dir/settings_file``, train (``resume``: a checkpoint path, or
    ``"auto"`` for the last checkpoint in ``output_dir`` so a killed run continues where it stopped),
    then save the final model and processor (loadable with ``from_pretrained`` / ``VLMAgent``).
    Returns the training metrics."""
    import json

    from transformers.trainer_utils import get_last_checkpoint

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / settings_file).write_text(json.dumps(settings, indent=2))
    if resume == "auto":
        resume = get_last_checkpoint(str(out)) if out.is_dir() else None
    result = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(str(out))
    processor.save_pretrained(str(out))
    return dict(result.metrics)
