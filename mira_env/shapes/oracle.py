"""The oracle reward: object-level match of a scene against the target scene.

``oracle_score(scene, target) -> (score, success)``: objects are matched one to one (Hungarian
algorithm) by the fraction of their four attributes that agree (shape, colour, size, cell); the
score is ``(sum of matched similarities + [backgrounds agree]) / (max(#objects, #target objects) + 1)``,
in [0, 1], 1 exactly when the scenes are equal (``success``). Missing and extra objects score 0.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from mira_env.editors.base import STATE_KEY
from mira_env.reward_api import RewardInput, RewardOutput
from mira_env.shapes.matching import match
from mira_env.shapes.scene import Obj, Scene, SceneError


def similarity(a: Obj, b: Obj) -> float:
    """Fraction of (shape, colour, size, cell) that ``a`` and ``b`` share."""
    return ((a.shape == b.shape) + (a.color == b.color) + (a.size == b.size) + (a.cell == b.cell)) / 4.0


def _scene(value: Scene | Mapping[str, Any] | str) -> Scene:
    if isinstance(value, str):  # a scene saved as JSON text (e.g. a datasets column)
        value = json.loads(value)
    return value if isinstance(value, Scene) else Scene.from_dict(value)


def oracle_score(scene: Scene | Mapping[str, Any], target_scene: Scene | Mapping[str, Any]) -> tuple[float, bool]:
    """``(score in [0, 1], success)`` of ``scene`` against ``target_scene`` (dicts or :class:`Scene`)."""
    current, target = _scene(scene), _scene(target_scene)
    if current == target:
        return 1.0, True
    pairs, _, _ = match(current.objects, target.objects, lambda a, b: 1.0 - similarity(a, b))
    total = sum(similarity(current.objects[i], target.objects[j]) for i, j in pairs)
    total += 1.0 if current.background == target.background else 0.0
    return total / (max(len(current.objects), len(target.objects)) + 1), False


class ShapesOracleReward:
    """A :class:`~mira_env.reward_api.RewardFunction`: the oracle score of the edited image's scene.

    Reads the scene from ``item.edited.info[STATE_KEY]`` and the target from
    ``item.task.metadata["target_scene"]``; components ``{"oracle": score, "success": 0.0 | 1.0}``;
    the total is ``score`` (plus ``success_bonus`` on success). Items without a scene or a target are
    unscorable (``total=None`` with the reason in ``errors``), never silently 0.
    """

    name = "shapes_oracle"
    #: the keys of every output's ``components`` (``info["reward_components"]`` shows them at every step)
    component_names = ("oracle", "success")

    def __init__(self, success_bonus: float = 0.0) -> None:
        self.success_bonus = float(success_bonus)

    def score(self, items: Sequence[RewardInput]) -> list[RewardOutput]:
        outputs = []
        for item in items:
            scene = item.edited.info.get(STATE_KEY) if item.edited is not None else None
            target = (item.task.metadata or {}).get("target_scene") if item.task is not None else None
            if scene is None or target is None:
                missing = "the edited image carries no scene" if scene is None else "the task has no target_scene"
                outputs.append(RewardOutput(None, {"oracle": None, "success": None},
                                            {"oracle": f"cannot score: {missing} (shapes-world tasks only)"}))
                continue
            try:
                value, success = oracle_score(scene, target)
            except (SceneError, ValueError) as exc:
                outputs.append(RewardOutput(None, {"oracle": None, "success": None}, {"oracle": f"cannot score: {exc}"}))
                continue
            outputs.append(RewardOutput(value + (self.success_bonus if success else 0.0),
                                        {"oracle": value, "success": 1.0 if success else 0.0}))
        return outputs


__all__ = ["ShapesOracleReward", "oracle_score", "similarity"]
