"""Target metrics: the edited image against the task's ground-truth target (MagicBrush, CompBench).

- ``target_l1`` / ``target_l2``: mean absolute / squared pixel difference on ``[0, 1]`` intensities
  (MagicBrush's L1 / L2; distances, 0 = the target exactly); the edited image is resized to the
  target's size first (bicubic).
- ``target_clip_i``: CLIP image-image cosine similarity of the edited image and the target (CLIP-I
  of MagicBrush; 1 = same embedding), with the shared ``clip:`` settings.

A task without a target gives ``None`` with the reason ("task ... has no target image"), never 0.
"""

from __future__ import annotations

from typing import Sequence

from mira_env.errors import TaskError
from mira_env.reward_api import RewardInput

from mira_env.rewards.base import Scores
from mira_env.rewards.clip import ClipImage
from mira_env.rewards.pixel import PixelDistance


def _targets(items: Sequence[RewardInput]) -> tuple[list, list[str | None]]:
    targets, reasons = [], []
    for item in items:
        try:
            target = item.task.load_target()
        except TaskError as exc:
            targets.append(None)
            reasons.append(f"cannot load the target: {exc}")
            continue
        targets.append(target)
        reasons.append(None if target is not None else f"task {item.task.id!r} has no target image")
    return targets, reasons


class TargetPixelDistance(PixelDistance):
    """Mean ``|edited - target|**p`` on ``[0, 1]`` intensities (``p`` = 1 or 2); a distance."""

    def __init__(self, power: int = 1, name: str | None = None) -> None:
        super().__init__(power, name or f"target_l{power}")

    def _score(self, items: Sequence[RewardInput]) -> Scores:
        targets, reasons = _targets(items)
        values = [None if target is None else self.distance(item.edited, target) for item, target in zip(items, targets)]
        return Scores(values, reasons)


class TargetClipImage(ClipImage):
    """CLIP-I against the target: cosine similarity of the edited image and the ground-truth target."""

    name = "target_clip_i"

    def _score(self, items):
        targets, reasons = _targets(items)
        present = [i for i, target in enumerate(targets) if target is not None]
        values: list[float | None] = [None] * len(items)
        if present:
            embedded = self.clip.embed_unique_images([targets[i] for i in present] + [items[i].edited for i in present])
            n = len(present)
            for slot, value in zip(present, (embedded[:n] * embedded[n:]).sum(-1).clamp(-1.0, 1.0).tolist()):
                values[slot] = value
        return Scores(values, reasons)
