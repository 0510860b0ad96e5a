"""The reward contract as the environment sees it (implementations live in the ``rewards`` package).

A reward function scores a batch of :class:`RewardInput` and returns one :class:`RewardOutput` per
item: the total used as the RL reward (``None`` = could not score) and every named component.
The environment calls it once per batch of finished episodes (or every step, see ``reward_mode``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Protocol, Sequence, runtime_checkable

from PIL import Image

from mira_env.tasks.task import Task


@dataclass
class RewardInput:
    """Everything a reward may look at for one episode (or one step of it)."""

    source: Image.Image
    edited: Image.Image
    instruction: str
    trajectory: Sequence[str]
    task: Task
    raw_actions: Sequence[str] = ()
    invalid_actions: int = 0
    terminated: bool = False
    step: int = 0


@dataclass
class RewardOutput:
    """The total reward and every component for one item. ``total`` is ``None`` when unscorable."""

    total: float | None
    components: Mapping[str, float | None] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class RewardFunction(Protocol):
    """Scores a batch; the env's ``reward=`` argument takes any object with this method."""

    def score(self, items: Sequence[RewardInput]) -> list[RewardOutput]: ...
