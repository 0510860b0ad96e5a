"""Configuration plumbing shared by ``mira train sft`` and ``mira train grpo``.

Every setting lives in a dataclass whose fields document themselves in ``metadata["help"]``. A run
is configured, lowest to highest priority, by: the dataclass defaults, a YAML file (``--config
run.yaml``, flat ``name: value`` pairs, any field of any of the run's dataclasses), and the command
line (``--name value``). TRL's own config (``SFTConfig`` / ``GRPOConfig``) is one of those
dataclasses, so every TRL setting (group size, beta, learning rate, generation, vLLM server mode,
checkpointing ...) is reachable from YAML and the CLI under TRL's own names.

This module imports nothing heavy: TRL's config classes are imported by the callers only when a
subcommand runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from mira_env.errors import ConfigError, describe

TINY_KINDS = ("qwen2_5_vl", "qwen3_vl")
DTYPES = ("auto", "float32", "bfloat16", "float16")


# ---------------------------------------------------------------------------------------------- dataclasses
@dataclass
class ModelArguments:
    """Which policy model to train, and how (full weights or LoRA)."""

    model: str | None = field(default=None, metadata={
        "help": "Policy model: a Hugging Face hub id (e.g. Qwen/Qwen2.5-VL-3B-Instruct) or a local folder saved with "
                "save_pretrained. Leave unset when --tiny builds one."})
    tiny: str | None = field(default=None, metadata={
        "help": "Build a tiny randomly initialised VLM offline and train it (smoke runs, CPU tests): "
                "'qwen2_5_vl' or 'qwen3_vl'. Mutually exclusive with --model."})
    tiny_path: str | None = field(default=None, metadata={
        "help": "Folder for the --tiny build (default: $MIRA_TINY_CACHE or the temp dir)."})
    dtype: str = field(default="auto", metadata={
        "help": "Weights dtype when loading --model: 'auto' (float32 on CPU, bfloat16 on CUDA), 'float32', "
                "'bfloat16' or 'float16'."})
    chat_template_path: str | None = field(default=None, metadata={
        "help": "A .jinja chat template to use instead of the policy family's MIRA template (TRL's "
                "chat_template_path); it must render tools, images in tool turns and the edit call as <edit>X</edit>. "
                "Needed for models of no known family (mira_env.agents.families)."})
    use_lora: bool = field(default=False, metadata={"help": "Train a LoRA adapter (PEFT) instead of all weights."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        metadata={"help": "Module names that get LoRA adapters (the language model's attention projections by "
                          "default; never lm_head, which TRL's GRPO loss reads directly)."})

    def __post_init__(self) -> None:
        if (self.model is None) == (self.tiny is None):
            raise ConfigError("give exactly one of --model (hub id or local path) and --tiny "
                              f"({' | '.join(TINY_KINDS)}); got model={self.model!r}, tiny={self.tiny!r}")
        if self.tiny is not None and self.tiny not in TINY_KINDS:
            raise ConfigError(f"tiny={describe(self.tiny)} is not one of {list(TINY_KINDS)}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype={describe(self.dtype)} is not one of {list(DTYPES)}")
        if self.use_lora:
            if self.lora_r < 1:
                raise ConfigError(f"lora_r={self.lora_r} must be >= 1")
            if "lm_head" in self.lora_target_modules:
                raise ConfigError("lora_target_modules must not contain 'lm_head': TRL computes log-probabilities "
                                  "from lm_head.weight directly, so an adapter there is never trained")


# ---------------------------------------------------------------------------------------------- CLI helpers
def _unwrap_optional(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _str_to_bool(text: str) -> bool:
    lowered = str(text).lower()
    if lowered in ("1", "true", "yes", "y", "on"):
        return True
    if lowered in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false), got {text!r}")


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"expected JSON, got {text!r} ({exc.msg})") from None


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type, title: str | None = None) -> None:
    """Add ``--<field>`` options for a dataclass of ours; defaults are SUPPRESSed (unset = not given)."""
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(title or cls.__name__, (cls.__doc__ or "").strip().splitlines()[0])
    for item in dataclasses.fields(cls):
        if not item.init:
            continue
        annotation = _unwrap_optional(hints[item.name])
        origin = typing.get_origin(annotation)
        kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "help": item.metadata.get("help", "")}
        if annotation is bool:
            kwargs.update(type=_str_to_bool, nargs="?", const=True, metavar="BOOL")
        elif origin is list:
            (inner,) = typing.get_args(annotation) or (str,)
            kwargs.update(type=inner if inner in (int, float, str) else str, nargs="*")
        elif origin is dict or annotation is dict:
            kwargs.update(type=_json_value, metavar="JSON")
        elif annotation in (int, float, str):
            kwargs.update(type=annotation)
        else:
            kwargs.update(type=str)
        group.add_argument(f"--{item.name}", dest=item.name, **kwargs)


def add_hf_dataclass_arguments(parser: argparse.ArgumentParser, cls: type, title: str) -> None:
    """Add the options of a TRL / transformers config dataclass (``GRPOConfig``, ``SFTConfig``).

    ``transformers.HfArgumentParser`` knows how to turn their fields into argparse options; its
    actions are copied into ``parser`` with SUPPRESSed defaults, so only the options actually given
    on the command line override the YAML file.
    """
    from transformers import HfArgumentParser

    source = HfArgumentParser(cls)
    group = parser.add_argument_group(title, f"every field of trl.{cls.__name__}, under its own name")
    taken = {opt for action in parser._actions for opt in action.option_strings}  # noqa: SLF001 - argparse has no public API to copy actions
    for action in source._actions:  # noqa: SLF001 - argparse has no public API to copy actions
        if isinstance(action, argparse._HelpAction) or any(opt in taken for opt in action.option_strings):  # noqa: SLF001 - argparse has no public API to copy actions
            continue
        action.default = argparse.SUPPRESS
        action.required = False
        group._add_action(action)  # noqa: SLF001 - argparse has no public API to copy actions


def load_yaml(path: str | Path | None) -> dict[str, Any]:
    """The flat ``name: value`` mapping of a YAML config file (``{}`` for ``None``)."""
    if path is None:
        return {}
    import yaml

    location = Path(path)
    if not location.is_file():
        raise ConfigError(f"config file {str(location)!r} does not exist")
    try:
        data = yaml.safe_load(location.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(location)!r} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(location)!r} must hold a mapping of name: value, got {describe(data)}")
    return data


def split_values(values: dict[str, Any], classes: Sequence[type]) -> list[dict[str, Any]]:
    """Route each ``name: value`` to the first dataclass of ``classes`` that has a field of that name."""
    routed: list[dict[str, Any]] = [{} for _ in classes]
    names = [{f.name for f in dataclasses.fields(cls) if f.init} for cls in classes]
    unknown = []
    for key, value in values.items():
        for index, known in enumerate(names):
            if key in known:
                routed[index][key] = value
                break
        else:
            unknown.append(key)
    if unknown:
        everything = sorted(set().union(*names))
        close = [n for n in everything if any(u.split("_")[0] in n for u in unknown)][:8]
        raise ConfigError(f"unknown setting(s) {sorted(unknown)}; settings of this command are the fields of "
                          f"{', '.join(c.__name__ for c in classes)}" + (f" (did you mean one of {close}?)" if close else ""))
    return routed


def resolve_config(classes: Sequence[type], args: argparse.Namespace | dict[str, Any] | None = None,
                   yaml_path: str | Path | None = None, overrides: dict[str, Any] | None = None,
                   defaults: dict[str, Any] | None = None) -> list[Any]:
    """Instances of ``classes`` from ``defaults`` <- YAML file (``config`` in ``args`` wins over
    ``yaml_path``) <- ``args`` (explicit CLI) <- ``overrides``."""
    given = dict(vars(args) if isinstance(args, argparse.Namespace) else (args or {}))
    yaml_path = given.pop("config", None) or yaml_path
    given = {k: v for k, v in given.items() if not k.startswith("_")}
    merged = {**(defaults or {}), **load_yaml(yaml_path), **given, **(overrides or {})}
    return [cls(**values) for cls, values in zip(classes, split_values(merged, classes))]


def config_to_dict(*configs: Any) -> dict[str, Any]:
    """A flat JSON-able dict of dataclass configs (written beside checkpoints for the record)."""
    out: dict[str, Any] = {}
    for config in configs:
        for item in dataclasses.fields(config):
            value = getattr(config, item.name)
            try:
                json.dumps(value)
            except TypeError:
                value = repr(value)
            out[item.name] = value
    return out
