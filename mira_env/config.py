"""Dataclass configuration of ``EditEnv``; every field documents itself in ``metadata['help']``."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping, TypeVar

from mira_env.actions import STOP
from mira_env.errors import ConfigError, choice_error, describe
from mira_env.tasks.images import DEFAULT_MAX_PIXELS
from mira_env.validate import check_int

T = TypeVar("T")
REWARD_MODES = ("terminal", "every_step", "delta")
#: upper bounds that catch absurd values before they exhaust memory (a typo of --size 25600)
LIMITS = {"height": 8192, "width": 8192, "max_steps": 10_000, "max_instruction_length": 1_000_000,
          "max_task_instruction_length": 1_000_000}
ON_EDITOR_ERROR = ("continue", "truncate")


@dataclass
class EditEnvConfig:
    """Settings of one :class:`~mira_env.env.EditEnv`."""

    height: int = field(default=256, metadata={"help": "Height of the observation images in pixels."})
    width: int = field(default=256, metadata={"help": "Width of the observation images in pixels."})
    max_steps: int = field(default=5, metadata={
        "help": "Step budget T_max: the episode is truncated after this many steps without <STOP>."})
    max_instruction_length: int = field(default=512, metadata={
        "help": "Longest atomic instruction (characters) sent to the editor; longer ones are invalid."})
    max_task_instruction_length: int = field(default=2048, metadata={
        "help": "Longest complex instruction C shown in observations (longer ones are cut)."})
    stop_token: str = field(default=STOP, metadata={
        "help": "Action that ends the episode (compared case-insensitively after stripping)."})
    invalid_action_penalty: float = field(default=-0.1, metadata={
        "help": "Reward added at a step whose action is empty, whitespace, holds a control character or is over-long."})
    editor_error_penalty: float = field(default=0.0, metadata={
        "help": "Reward added at a step whose edit failed (exception, blank or malformed output)."})
    on_editor_error: str = field(default="continue", metadata={
        "help": "After a failed edit: 'continue' the episode with the image kept, or 'truncate' it."})
    reject_blank_outputs: bool = field(default=True, metadata={
        "help": "Treat a constant-colour editor output (a safety-checker black frame) as a failed edit."})
    reward_mode: str = field(default="terminal", metadata={
        "help": "'terminal': score once when the episode ends; 'every_step': score every step; "
                "'delta': every step the change of the score since the previous step (sums to the final)."})
    max_pixels: int = field(default=DEFAULT_MAX_PIXELS, metadata={
        "help": "Task images with more pixels are refused with an error naming the task."})

    def __post_init__(self) -> None:
        for name in ("height", "width", "max_steps", "max_instruction_length", "max_task_instruction_length",
                     "max_pixels"):
            value = check_int(name, getattr(self, name))
            if name in LIMITS and value > LIMITS[name]:
                raise ConfigError(f"{name}={value} is over the limit of {LIMITS[name]}; pass a smaller value")
        if self.reward_mode not in REWARD_MODES:
            raise choice_error("reward_mode", self.reward_mode, REWARD_MODES)
        if self.on_editor_error not in ON_EDITOR_ERROR:
            raise choice_error("on_editor_error", self.on_editor_error, ON_EDITOR_ERROR)
        if not isinstance(self.stop_token, str) or not self.stop_token.strip():
            raise ConfigError(f"stop_token={describe(self.stop_token)} must be a non-empty str")

    @classmethod
    def from_kwargs(cls, config: "EditEnvConfig | None" = None, **overrides) -> "EditEnvConfig":
        """A config from an optional base plus keyword overrides; unknown names raise a clear error."""
        return merge_config(cls, config, overrides, "EditEnv")


def merge_config(cls: type[T], config: T | None, overrides: Mapping[str, Any], what: str) -> T:
    """``cls`` built from the fields of ``config`` (if any) with ``overrides`` on top.

    Unknown override names raise :class:`ConfigError` listing the known options of ``what``.
    """
    names = [f.name for f in fields(cls)]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise ConfigError(f"unknown {what} option(s) {unknown}; known options: {sorted(names)}")
    base = {name: getattr(config, name) for name in names} if config is not None else {}
    base.update(overrides)
    return cls(**base)
