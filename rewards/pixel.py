"""Pixel preservation terms: L1 and L2 distance between the edited and the source image.

Direction: these are DISTANCES (0 = identical, higher = more changed), with values in ``[0, 1]``
because pixels are scaled to ``[0, 1]`` first. To reward preservation give them a NEGATIVE weight
(or use ``normalization`` and a negative weight). ``l1`` is the mean absolute difference, ``l2`` the
mean squared difference (MSE). When the editor changed the resolution, the edited image is resized
(bicubic) to the source size first.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from mira_env.reward_api import RewardInput

from mira_env.rewards.base import RewardTerm
from mira_env.rewards.images import match_size, rgb


class PixelDistance(RewardTerm):
    """Mean ``|e - s|**p`` over pixels and channels, on ``[0, 1]`` intensities (``p`` = 1 or 2)."""

    value_range = (0.0, 1.0)
    higher_is_better = False

    def __init__(self, power: int = 1, name: str | None = None) -> None:
        if power not in (1, 2):
            from mira_env.rewards.errors import RewardConfigError, describe

            raise RewardConfigError(f"power={describe(power)} must be 1 (L1) or 2 (L2)")
        self.power = power
        self.name = name or f"l{power}"

    def distance(self, edited, reference) -> float:
        """Mean ``|edited - reference|**power`` on ``[0, 1]`` intensities, ``edited`` resized to the reference."""
        goal = np.asarray(rgb(reference), dtype=np.float32) / 255.0
        moved = np.asarray(match_size(rgb(edited), reference), dtype=np.float32) / 255.0
        diff = np.abs(moved - goal)
        return float(np.mean(diff if self.power == 1 else diff * diff))

    def _score(self, items: Sequence[RewardInput]) -> list[float]:
        return [self.distance(item.edited, item.source) for item in items]

