"""Loading the policy VLM (hub id, local folder, or a tiny offline build) and its LoRA config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from train.config import ModelArguments


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
