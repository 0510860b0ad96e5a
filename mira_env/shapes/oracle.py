"""The oracle reward: object-level match of a scene against the target scene.

``oracle_score(scene, target) -> (score, success)``: objects are matched one to one (Hungarian
algorithm) by the fraction of their four attributes that agree (shape, colour, size, cell); the
score is ``(sum of matched similarities + [backgrounds agree]) / (max(#objects, #target objects) + 1)``,
in [0, 1], 1 exactly when the scenes are equal (``success``). Missing and extra objects score 0.

``oracle_progress(score, start)``: the same score measured as progress over the source's score ``start``,
``(score - start) / (1 - start)`` clipped to ``[-1, 1]``.

:func:`score_item` is the one place that scores a :class:`~mira_env.reward_api.RewardInput` with these
(reading the scenes from the images and the task); :class:`ShapesOracleReward` (the env's default reward)
and the ``oracle`` / ``oracle_progress`` reward terms (:mod:`mira_env.rewards.oracle`) call it.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from mira_env.editors.base import STATE_KEY
from mira_env.reward_api import RewardInput, RewardOutput
from mira_env.shapes.matching import match
from mira_env.shapes.scene import Obj, Scene, SceneError


class UnscorableError(ValueError):
    """An item the oracle cannot score; the message says why (``cannot score: ...``)."""


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


def oracle_progress(score: float, start: float) -> float:
    """Progress from the source's score ``start`` to ``score``: 0 for a no-op, 1 at the target, negative for moving
    away, in ``[-1, 1]``. With nothing to gain (``start == 1``) staying is 0 and leaving is negative."""
    if start >= 1.0:
        return max(-1.0, score - 1.0)
    return float(min(1.0, max(-1.0, (score - start) / (1.0 - start))))


def score_item(item: RewardInput, progress: bool = False) -> tuple[float, bool]:
    """``(value, success)`` of ``item``: the oracle score of the edited image's scene
    (``item.edited.info[STATE_KEY]``) against ``item.task.metadata["target_scene"]``, or with ``progress`` its
    :func:`oracle_progress` over the source scene (``item.source.info[STATE_KEY]``, else
    ``task.metadata["scene"]``). Raises :class:`UnscorableError` naming what is missing or malformed."""
    scene = item.edited.info.get(STATE_KEY) if item.edited is not None else None
    target = (item.task.metadata or {}).get("target_scene") if item.task is not None else None
    if scene is None or target is None:
        missing = "the edited image carries no scene" if scene is None else "the task has no target_scene"
        raise UnscorableError(f"cannot score: {missing} (shapes-world tasks only)")
    try:
        score, success = oracle_score(scene, target)
        if not progress:
            return score, success
        source = item.source.info.get(STATE_KEY) if item.source is not None else None
        if source is None:
            source = (item.task.metadata or {}).get("scene")
        if source is None:
            raise ValueError("neither the source image nor task.metadata carries the source scene")
        return oracle_progress(score, oracle_score(source, target)[0]), success
    except (SceneError, ValueError, KeyError, TypeError) as exc:  # a malformed scene is this item's problem
        raise UnscorableError(f"cannot score: {type(exc).__name__}: {exc}") from exc


class ShapesOracleReward:
    """A :class:`~mira_env.reward_api.RewardFunction`: the oracle score of the edited image's scene
    (:func:`score_item`); components ``{"oracle": score, "success": 0.0 | 1.0}``; the total is ``score``
    (plus ``success_bonus`` on success). Items without a scene or a target are unscorable (``total=None``
    with the reason in ``errors``), never silently 0.
    """

    name = "shapes_oracle"
    #: the keys of every output's ``components`` (``info["reward_components"]`` shows them at every step)
    component_names = ("oracle", "success")

    def __init__(self, success_bonus: float = 0.0) -> None:
        self.success_bonus = float(success_bonus)

    def score(self, items: Sequence[RewardInput]) -> list[RewardOutput]:
        outputs = []
        for item in items:
            try:
                value, success = score_item(item)
            except UnscorableError as exc:
                outputs.append(RewardOutput(None, {"oracle": None, "success": None}, {"oracle": str(exc)}))
                continue
            outputs.append(RewardOutput(value + (self.success_bonus if success else 0.0),
                                        {"oracle": value, "success": 1.0 if success else 0.0}))
        return outputs


__all__ = ["ShapesOracleReward", "UnscorableError", "oracle_progress", "oracle_score", "score_item", "similarity"]
