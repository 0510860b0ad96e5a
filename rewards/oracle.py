"""``oracle``: the shapes-world oracle reward as a term (wraps :func:`mira_env.shapes.oracle_score`).

The scene of the edited image is ``RewardInput.edited.info[mira_env.editors.base.STATE_KEY]``, the
target ``RewardInput.task.metadata["target_scene"]``. Value: the object-level match score in
``[0, 1]`` (1 exactly when the scenes are equal), plus ``success_bonus`` on an exact match.
Items from other worlds (no scene, no target) are ``None`` with the reason, never 0.
"""

from __future__ import annotations

from typing import Sequence

from mira_env.editors.base import STATE_KEY
from mira_env.reward_api import RewardInput

from rewards.base import RewardTerm, Scores


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
            except Exception as exc:  # noqa: BLE001 - a malformed scene is this item's problem
                values.append(None)
                reasons.append(f"cannot score: {type(exc).__name__}: {exc}")
                continue
            values.append(value + (self.success_bonus if success else 0.0))
            reasons.append(None)
        return Scores(values, reasons)
