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
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Sequence

from mira_env.errors import ConfigError, describe
from mira_env.validate import check_choice, check_int

TINY_KINDS = ("qwen2_5_vl", "qwen3_vl")
DTYPES = ("auto", "float32", "bfloat16", "float16")


# ---------------------------------------------------------------------------------------------- dataclasses
@dataclass
class ModelArguments:
    """Which policy model to train, and how (full weights or LoRA); the names are TRL's ``ModelConfig``'s."""

    #: old setting names (YAML keys, dict keys) -> the new ones; each old name warns once (removed in the next release)
    OLD_NAMES: ClassVar[dict[str, str]] = {"model": "model_name_or_path", "use_lora": "use_peft", "tiny": "tiny_vlm"}

    model_name_or_path: str | None = field(default=None, metadata={
        "help": "Policy model: a Hugging Face hub id (e.g. Qwen/Qwen2.5-VL-3B-Instruct) or a local folder saved with "
                "save_pretrained. Leave unset when --tiny_vlm builds one."})
    tiny_vlm: str | None = field(default=None, metadata={
        "help": "Build a tiny randomly initialised VLM offline and train it (smoke runs, CPU tests): "
                "'qwen2_5_vl' or 'qwen3_vl'. Mutually exclusive with --model_name_or_path."})
    tiny_path: str | None = field(default=None, metadata={
        "help": "Folder for the --tiny_vlm build (default: $MIRA_TINY_CACHE or the temp dir)."})
    dtype: str = field(default="auto", metadata={
        "help": "Weights dtype when loading --model_name_or_path: 'auto' (float32 on CPU, bfloat16 on CUDA), "
                "'float32', 'bfloat16' or 'float16'.", "choices": DTYPES})
    chat_template_path: str | None = field(default=None, metadata={
        "help": "A .jinja chat template to use instead of the policy family's MIRA template (TRL's "
                "chat_template_path); it must render tools, images in tool turns and the edit call as <edit>X</edit>. "
                "Needed for models of no known family (mira_env.agents.families)."})
    use_peft: bool = field(default=False, metadata={"help": "Train a LoRA adapter (PEFT) instead of all weights."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        metadata={"help": "Module names that get LoRA adapters (the language model's attention projections by "
                          "default; never lm_head, which TRL's GRPO loss reads directly)."})

    def __post_init__(self) -> None:
        if (self.model_name_or_path is None) == (self.tiny_vlm is None):
            raise ConfigError("give exactly one of --model_name_or_path (hub id or local path) and --tiny_vlm "
                              f"({' | '.join(TINY_KINDS)}); got model_name_or_path={self.model_name_or_path!r}, "
                              f"tiny_vlm={self.tiny_vlm!r}")
        if self.tiny_vlm is not None:
            check_choice("tiny_vlm", self.tiny_vlm, TINY_KINDS)
        check_choice("dtype", self.dtype, DTYPES)
        if self.use_peft:
            check_int("lora_r", self.lora_r)
            if "lm_head" in self.lora_target_modules:
                raise ConfigError("lora_target_modules must not contain 'lm_head': TRL computes log-probabilities "
                                  "from lm_head.weight directly, so an adapter there is never trained")

    # the old attribute names, for user code that reads them (kept for one release)
    @property
    def model(self) -> str | None:
        return self.model_name_or_path

    @property
    def tiny(self) -> str | None:
        return self.tiny_vlm

    @property
    def use_lora(self) -> bool:
        return self.use_peft


#: the old flag spellings of ModelArguments (mira train sft / grpo)
MODEL_OLD_FLAGS_NAMES = (("--model", "model_name_or_path"), ("--use_lora", "use_peft"), ("--tiny", "tiny_vlm"))


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


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type, title: str | None = None,
                            skip: Sequence[str] = ()) -> None:
    """Add ``--<field>`` options for a dataclass of ours; defaults are SUPPRESSed (unset = not given).

    The help is the field's ``metadata["help"]``; ``metadata["choices"]`` restricts the value; a ``list`` field
    takes several values (``--agents oracle random``) and may be repeated (the values add up); a ``dict`` field
    takes JSON; a ``bool`` field takes ``true`` / ``false`` (alone: true). ``skip`` names fields left out.
    """
    hints = typing.get_type_hints(cls)
    doc = (cls.__doc__ or "").strip().splitlines()
    group = parser.add_argument_group(title or cls.__name__, doc[0] if doc else None)
    for item in dataclasses.fields(cls):
        if not item.init or item.name in skip:
            continue
        annotation = _unwrap_optional(hints[item.name])
        origin = typing.get_origin(annotation)
        kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "help": _field_help(item)}
        if annotation is bool:
            kwargs.update(type=_str_to_bool, nargs="?", const=True, metavar="BOOL")
        elif origin is list:
            (inner,) = typing.get_args(annotation) or (str,)
            kwargs.update(nargs="*", action=_ListAction, item_type=inner if inner in (int, float, str) else str)
        elif origin is dict or annotation is dict:
            kwargs.update(type=_json_value, metavar="JSON")
        elif annotation in (int, float, str):
            kwargs.update(type=annotation)
        else:
            kwargs.update(type=str)
        if "choices" in item.metadata:
            kwargs["choices"] = list(item.metadata["choices"])
        group.add_argument(f"--{item.name}", dest=item.name, **kwargs)


class _ListAction(argparse.Action):
    """A list flag: space- and/or comma-separated values (``--agents oracle random`` = ``--agents oracle,random``),
    repeatable (the values add up)."""

    def __init__(self, option_strings: list[str], dest: str, item_type: type = str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.item_type = item_type

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        items = list(getattr(namespace, self.dest, None) or [])
        for text in values if isinstance(values, list) else [values]:
            for piece in (p.strip() for p in str(text).split(",")):
                if not piece:
                    continue
                try:
                    items.append(self.item_type(piece))
                except ValueError:
                    raise argparse.ArgumentError(self, f"invalid {self.item_type.__name__} value: {piece!r}") from None
        setattr(namespace, self.dest, items)


def _field_help(item: dataclasses.Field) -> str:
    """The field's help with its default (``%`` escaped for argparse)."""
    text = str(item.metadata.get("help", ""))
    if item.default is not dataclasses.MISSING and item.default is not None and "default" not in text.lower():
        text += f" (default: {item.default})"
    return text.replace("%", "%%")


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """``--config FILE.yaml``: flat ``name: value`` settings of the command; the command line wins over it."""
    parser.add_argument("--config", default=argparse.SUPPRESS, metavar="FILE.yaml",
                        help="YAML file of settings (flat name: value, any field of the command's settings); "
                             "flags given on the command line win over it")


# ---------------------------------------------------------------------------------------------- old spellings
#: OldFlag.value of an old flag that takes a value (mapped onto the new flag's action)
TAKES_VALUE = "<takes a value>"


@dataclass(frozen=True)
class OldFlag:
    """A flag spelling kept for one release: accepted, mapped onto ``field``, and announced once on stderr.

    ``value``: the old flag took no value and set the field to this (``--no-progress`` -> ``progress=False``).
    ``key_value``: the old flag was a repeatable ``KEY=VALUE`` merged into the dict ``field``
    (``--editor-option device=cuda`` -> ``editor_options={"device": "cuda"}``). ``also``: ``(field, value)`` pairs
    the old flag set too (``--tiny`` of audit-rewards -> ``--tiny_reward_models --tiny_judge``).
    """

    flag: str
    field: str
    value: Any = TAKES_VALUE
    key_value: bool = False
    also: tuple[tuple[str, Any], ...] = ()

    @property
    def new_spelling(self) -> str:
        if self.value != TAKES_VALUE:
            text = " ".join(f"--{name}" if value is True else f"--{name} {str(value).lower()}"
                            for name, value in ((self.field, self.value), *self.also))
            return text
        if self.key_value:
            return f"--{self.field} '{{\"KEY\": VALUE}}'"
        return f"--{self.field}"


def dash_flags(classes: Sequence[type], *names: str) -> list[OldFlag]:
    """``OldFlag("--group-size", "group_size")`` for every field of ``classes`` in ``names`` (the old dash spelling
    of a field whose new name is the same in snake_case)."""
    fields = {f.name for cls in classes for f in dataclasses.fields(cls)}
    missing = [n for n in names if n not in fields]
    if missing:
        raise ValueError(f"dash_flags: no field {missing} in {[c.__name__ for c in classes]}")
    return [OldFlag("--" + name.replace("_", "-"), name) for name in names]


class _OldFlagAction(argparse.Action):
    def __init__(self, option_strings: list[str], dest: str, old: OldFlag, target: argparse.Action | None,
                 **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.old, self.target = old, target

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        warned = parser.__dict__.setdefault("_mira_warned", set())
        if self.old.flag not in warned:
            warned.add(self.old.flag)
            print(f"{parser.prog}: warning: {self.old.flag} is deprecated, use {self.old.new_spelling} "
                  "(removed in the next release)", file=sys.stderr)
        if self.old.value != TAKES_VALUE:
            setattr(namespace, self.dest, self.old.value)
            for name, value in self.old.also:
                setattr(namespace, name, value)
        elif self.old.key_value:
            from mira_env.agents.specs import parse_options

            merged = dict(getattr(namespace, self.dest, None) or {})
            merged.update(parse_options([values], self.old.field.removesuffix("_options")))
            setattr(namespace, self.dest, merged)
        elif self.target is not None:
            self.target(parser, namespace, values, option_string)


def add_old_flags(parser: argparse.ArgumentParser, old_flags: Sequence[OldFlag]) -> None:
    """Accept each :class:`OldFlag` (hidden from ``--help``), mapped onto the action of its new ``--<field>``."""
    actions = {action.dest: action for action in parser._actions}  # noqa: SLF001 - argparse has no public API to find actions
    for old in old_flags:
        target = actions.get(old.field)
        if target is None:
            raise ValueError(f"old flag {old.flag}: the parser has no --{old.field}")
        if old.value != TAKES_VALUE:
            kwargs: dict[str, Any] = {"nargs": 0}
        elif old.key_value:
            kwargs = {"metavar": "KEY=VALUE"}
        else:
            kwargs = {"nargs": target.nargs, "type": target.type, "choices": target.choices, "const": target.const}
            kwargs = {k: v for k, v in kwargs.items() if v is not None}
        parser.add_argument(old.flag, dest=old.field, action=_OldFlagAction, old=old, target=target,
                            default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kwargs)


def add_command_arguments(parser: argparse.ArgumentParser, groups: Sequence[tuple[type, str]],
                          old_flags: Sequence[OldFlag] = (), skip: Sequence[str] = ()) -> None:
    """A command's whole option set: ``--config``, the fields of each ``(dataclass, title)`` and the old flags."""
    add_config_argument(parser)
    for cls, title in groups:
        add_dataclass_arguments(parser, cls, title, skip=skip)
    add_old_flags(parser, old_flags)


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
    dashed = []
    for action in source._actions:  # noqa: SLF001 - argparse has no public API to copy actions
        if isinstance(action, argparse._HelpAction) or any(opt in taken for opt in action.option_strings):  # noqa: SLF001 - argparse has no public API to copy actions
            continue
        action.default = argparse.SUPPRESS
        action.required = False
        # HfArgumentParser also accepts --output-dir for --output_dir: one style here, the dash one kept as an OldFlag
        snake = [opt for opt in action.option_strings if "-" not in opt[2:]]
        dashed += [OldFlag(opt, action.dest) for opt in action.option_strings if opt not in snake]
        action.option_strings = snake or action.option_strings
        group._add_action(action)  # noqa: SLF001 - argparse has no public API to copy actions
    add_old_flags(parser, [old for old in dashed if old.flag not in taken])


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
    for cls in classes:
        for old_name, new_name in getattr(cls, "OLD_NAMES", {}).items():
            if old_name in merged:
                print(f"mira: warning: setting {old_name!r} is deprecated, use {new_name!r} (removed in the next "
                      "release)", file=sys.stderr)
                merged.setdefault(new_name, merged.pop(old_name))
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
