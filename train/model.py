"""Loading the policy VLM (hub id, local folder, or a tiny offline build), its LoRA config, and weight-true resume.

Resume (:func:`train_and_save`): ``resume="auto"`` picks the newest COMPLETE checkpoint of the run folder (a torn
last one, e.g. from a run killed while saving, is skipped with a warning), refuses a run folder whose recorded
settings differ from this run's in anything but :data:`RESUMABLE_SETTINGS`, and loads the checkpoint's WEIGHTS into
the model before training continues. transformers 5 saves VLM checkpoints under converted key names, and
``Trainer``'s own non-strict load of them into a freshly built model loads nothing (it only warns), so
:func:`load_checkpoint_weights` maps the keys the way ``from_pretrained`` does and checks that every weight was
loaded. Optimizer, scheduler, RNG and data position are ``Trainer``'s own resume. LoRA runs load the adapter through
``Trainer`` (PEFT's own key names), which works.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from mira_env.errors import ConfigError, describe
from mira_env.train.config import ModelArguments

logger = logging.getLogger(__name__)

#: Settings a resumed run may change; any other difference from the recorded settings refuses to resume.
RESUMABLE_SETTINGS = frozenset({
    "max_steps", "num_train_epochs", "resume", "output_dir", "logging_dir", "logging_steps", "logging_first_step",
    "save_steps", "save_total_limit", "save_strategy", "report_to", "run_name", "disable_tqdm", "tiny_path",
    "dataloader_num_workers", "push_to_hub", "hub_model_id", "log_completions", "num_completions_to_print",
})


class ResumeError(ConfigError):
    """A run cannot be resumed as asked (other settings, no complete checkpoint, weights that do not load)."""


def resolve_model_path(args: ModelArguments) -> str:
    """The hub id / folder to load: ``args.model_name_or_path``, or a tiny model built offline for ``args.tiny_vlm``."""
    if args.tiny_vlm is None:
        return str(args.model_name_or_path)
    from mira_env.tiny.vlm import build_tiny_vlm

    return str(build_tiny_vlm(args.tiny_vlm, path=Path(args.tiny_path) if args.tiny_path else None))


def torch_dtype(name: str):
    import torch

    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_available() else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def load_policy(args: ModelArguments, chat_template_path: str | None = None) -> tuple[Any, Any]:
    """``(model, processor)`` through ``from_pretrained`` (the path a real hub id takes); the processor gets a chat
    template that renders the MIRA conversation (:func:`mira_env.agents.families.prepare_processor`)."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from mira_env.agents.families import prepare_processor

    path = resolve_model_path(args)
    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch_dtype(args.dtype))
    prepare_processor(processor, model, chat_template_path=chat_template_path, source=str(path))
    return model, processor


def lora_config(args: ModelArguments):
    """A PEFT ``LoraConfig`` for ``args`` (``None`` without ``use_lora``)."""
    if not args.use_peft:
        return None
    from peft import LoraConfig

    return LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                      target_modules=list(args.lora_target_modules), task_type="CAUSAL_LM")


def generation_suppression(processor: Any) -> dict:
    """``generation_kwargs`` that keep a policy from sampling image / video placeholder tokens."""
    from mira_env.agents.families import suppress_token_ids

    ids = suppress_token_ids(processor)
    return {"suppress_tokens": ids} if ids else {}


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


# ---------------------------------------------------------------------------------------------- resume
def _weights_file(folder: Path) -> Path | None:
    for name in ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors"):
        if (folder / name).is_file():
            return folder / name
    return None


def checkpoint_problem(folder: str | Path) -> str | None:
    """Why ``folder`` is not a complete Trainer checkpoint (None when it is)."""
    folder = Path(folder)
    state = folder / "trainer_state.json"
    try:
        step = json.loads(state.read_text(encoding="utf-8"))["global_step"]
    except (OSError, ValueError, KeyError, TypeError):
        return "no readable trainer_state.json with a global_step"
    if not isinstance(step, int):
        return f"trainer_state.json has global_step={describe(step)}"
    if _weights_file(folder) is None:
        return "no model.safetensors / model.safetensors.index.json / adapter_model.safetensors"
    if not (folder / "optimizer.pt").is_file() or not (folder / "scheduler.pt").is_file():
        return "no optimizer.pt / scheduler.pt"
    return None


def find_resume_checkpoint(output_dir: str | Path) -> str | None:
    """The newest complete ``checkpoint-N`` folder of ``output_dir`` (torn ones skipped, logged); None if none."""
    out = Path(output_dir)
    if not out.is_dir():
        return None
    found = []
    for child in out.iterdir():
        if child.is_dir() and child.name.startswith("checkpoint-") and child.name[len("checkpoint-"):].isdigit():
            found.append((int(child.name[len("checkpoint-"):]), child))
    for _, folder in sorted(found, reverse=True):
        problem = checkpoint_problem(folder)
        if problem is None:
            return str(folder)
        logger.warning("skipping the torn checkpoint %s (%s); resuming from an earlier one", folder, problem)
    return None


def _state_dict_file(folder: Path) -> dict:
    from safetensors.torch import load_file

    if (folder / "model.safetensors").is_file():
        return load_file(str(folder / "model.safetensors"), device="cpu")
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        state: dict = {}
        for shard in shards:
            state.update(load_file(str(folder / shard), device="cpu"))
        return state
    raise ResumeError(f"checkpoint {str(folder)!r} has no model.safetensors (or index) to load weights from")


def load_checkpoint_weights(model: Any, checkpoint: str | Path) -> int:
    """Load the full-model weights saved in ``checkpoint`` into ``model``; returns how many tensors were loaded.

    The saved key names are mapped to the model's own through transformers' weight conversion (the renames
    ``save_pretrained`` applied); every weight of the model must be loaded, or :class:`ResumeError` says which not.
    """
    import torch
    from transformers.core_model_loading import revert_weight_conversion

    folder = Path(checkpoint)
    saved = _state_dict_file(folder)
    live = model.state_dict()
    # live name -> saved name: save_pretrained's renaming, applied to the live tensors (identity tells which is which)
    by_storage = {}
    for name, tensor in live.items():
        by_storage.setdefault((tensor.data_ptr(), tuple(tensor.shape)), []).append(name)
    try:
        reverted = revert_weight_conversion(model, dict(live))
    except Exception as exc:  # noqa: BLE001 - any conversion failure: fall back to plain names
        logger.warning("cannot compute the saved key names of %s (%s); using the model's own", type(model).__name__,
                       exc)
        reverted = dict(live)
    saved_to_live: dict[str, list[str]] = {}
    for saved_name, tensor in reverted.items():
        names = by_storage.get((tensor.data_ptr(), tuple(tensor.shape)))
        if names:
            saved_to_live[saved_name] = names
    loaded: set[str] = set()
    with torch.no_grad():
        for saved_name, value in saved.items():
            for live_name in saved_to_live.get(saved_name, [saved_name] if saved_name in live else []):
                target = live[live_name]
                if tuple(target.shape) != tuple(value.shape):
                    raise ResumeError(f"checkpoint {str(folder)!r}: {saved_name} has shape {tuple(value.shape)}, the "
                                      f"model's {live_name} {tuple(target.shape)}; resume with the same base model")
                target.copy_(value.to(device=target.device, dtype=target.dtype))
                loaded.add(live_name)
    tied = {name for names in by_storage.values() if len(names) > 1 and any(n in loaded for n in names)
            for name in names}
    missing = sorted(set(live) - loaded - tied)
    if missing:
        raise ResumeError(f"checkpoint {str(folder)!r} left {len(missing)} of the model's {len(live)} weights unloaded "
                          f"(e.g. {missing[:3]}); it was saved from another model class or version")
    return len(loaded)


def _is_peft(model: Any) -> bool:
    return hasattr(model, "peft_config") and callable(getattr(model, "load_adapter", None))


def check_resume_settings(recorded: dict, current: dict, where: str) -> None:
    """Refuse to resume when ``current`` differs from ``recorded`` outside :data:`RESUMABLE_SETTINGS`."""
    changed = sorted(key for key in set(recorded) | set(current)
                     if key not in RESUMABLE_SETTINGS and recorded.get(key) != current.get(key))
    if changed:
        detail = "; ".join(f"{key}: {recorded.get(key)!r} -> {current.get(key)!r}" for key in changed[:8])
        raise ResumeError(f"cannot resume the run in {where}: its settings differ in {changed} ({detail}). Resume with "
                          f"the recorded settings (only {sorted(RESUMABLE_SETTINGS)} may change), or pick a new "
                          "--output_dir")


def _trainer_settings(args: Any) -> dict:
    values = args.to_dict() if callable(getattr(args, "to_dict", None)) else {}
    out = {}
    for key, value in values.items():
        try:
            json.dumps(value)
        except TypeError:
            value = repr(value)
        out[key] = value
    return out


def policy_record_callback(record: dict):
    """A ``TrainerCallback`` that writes the policy record (:data:`mira_env.agents.prompt.POLICY_RECORD`) into
    every checkpoint, so any checkpoint evaluates in the conversation it was trained on."""
    from transformers import TrainerCallback

    from mira_env.agents.prompt import POLICY_RECORD

    class _PolicyRecord(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir():
                (folder / POLICY_RECORD).write_text(json.dumps(record, indent=2))
            return control

    return _PolicyRecord()


def train_and_save(trainer: Any, processor: Any, output_dir: str, resume: str | None,
                   settings: dict, settings_file: str, policy: dict | None = None) -> dict:
    """Train (resuming when asked) and save the final model, processor and policy record; returns the metrics.

    ``settings`` (with the trainer's own arguments) is recorded as ``output_dir/settings_file``. ``resume``: a
    checkpoint folder, or ``"auto"`` for the newest complete checkpoint in ``output_dir`` (none: a fresh start).
    Resuming refuses other settings (:func:`check_resume_settings`) and loads the checkpoint's weights into the model
    (:func:`load_checkpoint_weights`) before the first new step.
    """
    from mira_env.agents.prompt import POLICY_RECORD

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    record_path = out / settings_file
    everything = {**_trainer_settings(trainer.args), **settings}
    checkpoint = None
    if resume == "auto":
        checkpoint = find_resume_checkpoint(out)
    elif resume:
        checkpoint = resume
        problem = checkpoint_problem(checkpoint)
        if problem:
            raise ResumeError(f"resume={resume!r} is not a complete checkpoint: {problem}")
    if checkpoint is not None:
        if record_path.is_file():
            check_resume_settings(json.loads(record_path.read_text(encoding="utf-8")), everything, str(out))
        step = json.loads((Path(checkpoint) / "trainer_state.json").read_text())["global_step"]
        max_steps = getattr(trainer.args, "max_steps", -1)
        if max_steps is not None and 0 < max_steps <= step:
            raise ResumeError(f"{checkpoint} is at step {step} and max_steps={max_steps}: nothing to train; raise "
                              "--max_steps to continue the run")
        if not _is_peft(trainer.model):
            count = load_checkpoint_weights(trainer.model, checkpoint)
            logger.info("resuming from %s: %d weight tensors loaded", checkpoint, count)
    record_path.write_text(json.dumps(everything, indent=2))
    if policy is not None:
        trainer.add_callback(policy_record_callback(policy))
    result = trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model(str(out))
    processor.save_pretrained(str(out))
    if policy is not None:
        (out / POLICY_RECORD).write_text(json.dumps(policy, indent=2))
    return dict(result.metrics)
