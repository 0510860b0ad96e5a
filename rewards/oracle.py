"""``oracle``: the shapes-world oracle reward as a term (wraps :func:`mira_env.shapes.oracle_score`).

The scene of the edited image is ``RewardInput.edited.info[mira_env.editors.base.STATE_KEY]``, the
target ``RewardInput.task.metadata["target_scene"]``. Value: the object-level match score in
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

from mira_env.editors.base import STATE_KEY
from mira_env.reward_api import RewardInput

from mira_env.rewards.base import RewardTerm, Scores


class OracleReward(RewardTerm):
    """Shapes-world oracle score of the edited scene against the target scene."""

    def __init__(self, success_bonus: float = 0.0, name: str = "oracle") -> None:
        self.success_bonus = float(success_bonus)
        self.name = name
        self.value_range = (0.0, 1.0 + max(0.0, self.success_bonus))

    def _score(self, items: Sequence[RewardInput]) -> Scores:
        from mira_env.shapes.oracle import oracle_score

        values, reasons = [], []
        for item in items:
            scene = item.edited.info.get(STATE_KEY) if item.edited is not None else None
            target = (item.task.metadata or {}).get("target_scene") if item.task is not None else None
            if scene is None or target is None:
                missing = "the edited image carries no scene" if scene is None else "the task has no target_scene"
                values.append(None)
                reasons.append(f"cannot score: {missing} (shapes-world tasks only)")
                continue
            try:
                value, success = oracle_score(scene, target)
                value = self._value(item, value, target, oracle_score)
            except Exception as exc:  # noqa: BLE001 - a malformed scene is this item's problem
                values.append(None)
                reasons.append(f"cannot score: {type(exc).__name__}: {exc}")
                continue
            values.append(value + (self.success_bonus if success else 0.0))
            reasons.append(None)
        return Scores(values, reasons)

    def _value(self, item: RewardInput, score: float, target, oracle_score) -> float:
        return score


class OracleProgress(OracleReward):
    """Oracle match gained over the source scene, normalised by what was left to gain (see module doc)."""

    def __init__(self, success_bonus: float = 0.0, name: str = "oracle_progress") -> None:
        super().__init__(success_bonus=success_bonus, name=name)
        self.value_range = (-1.0, 1.0 + max(0.0, self.success_bonus))

    def _value(self, item: RewardInput, score: float, target, oracle_score) -> float:
        source = item.source.info.get(STATE_KEY) if item.source is not None else None
        if source is None:
            source = (item.task.metadata or {}).get("scene")
        if source is None:
            raise ValueError("neither the source image nor task.metadata carries the source scene")
        start, _ = oracle_score(source, target)
        if start >= 1.0:  # nothing to gain: staying at the target is 0, leaving it is negative
            return max(-1.0, score - 1.0)
        return float(min(1.0, max(-1.0, (score - start) / (1.0 - start))))
