"""``oracle`` and ``oracle_progress``: the shapes-world oracle as reward terms (:func:`mira_env.shapes.oracle.score_item`).

The scene of the edited image is ``RewardInput.edited.info[mira_env.editors.base.STATE_KEY]``, the
target ``RewardInput.task.metadata["target_scene"]``. ``oracle``: the object-level match score in
``[0, 1]`` (1 exactly when the scenes are equal), plus ``success_bonus`` on an exact match.
Items from other worlds (no scene, no target) are ``None`` with the reason, never 0.

``oracle_progress``: the same match score measured as progress over the source,
``(score(edited) - score(source)) / (1 - score(source))`` clipped to ``[-1, 1]``: 0 for leaving the
image alone, 1 for reaching the target, negative for moving away from it. The plain oracle score
pays a no-op roughly what the source already matches (about 0.8 on difficulty-1 tasks), which a
GRPO policy can learn to collect by editing nothing; progress removes that floor.
"""

from __future__ import annotations

from typing import Sequence

from mira_env.reward_api import RewardInput
from mira_env.shapes.oracle import UnscorableError, score_item

from mira_env.rewards.base import RewardTerm, Scores


class OracleReward(RewardTerm):
    """Shapes-world oracle score of the edited scene against the target scene."""

    #: score progress over the source scene instead of the plain match (:class:`OracleProgress`)
    progress = False

    def __init__(self, success_bonus: float = 0.0, name: str = "oracle") -> None:
        self.success_bonus = float(success_bonus)
        self.name = name
        self.value_range = (-1.0 if self.progress else 0.0, 1.0 + max(0.0, self.success_bonus))

    def _score(self, items: Sequence[RewardInput]) -> Scores:
        values, reasons = [], []
        for item in items:
            try:
                value, success = score_item(item, progress=self.progress)
            except UnscorableError as exc:
                values.append(None)
                reasons.append(str(exc))
                continue
            values.append(value + (self.success_bonus if success else 0.0))
            reasons.append(None)
        return Scores(values, reasons)


class OracleProgress(OracleReward):
    """Oracle match gained over the source scene, normalised by what was left to gain (see module doc)."""

    progress = True

    def __init__(self, success_bonus: float = 0.0, name: str = "oracle_progress") -> None:
        super().__init__(success_bonus=success_bonus, name=name)
