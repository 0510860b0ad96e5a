"""The oracle planner: the next atomic edit that brings a scene closer to a target scene.

Objects of the current and target scenes are matched at minimum edit cost (in-place attribute
fixes cost one edit each; a moved object costs one move plus its fixes, or a remove plus an add,
whichever is cheaper). The next edit is chosen among the executable ones: background, in-place
fixes, removals, moves into free cells, adds into free cells; a move blocked by a cycle first
moves the blocking object to a free cell. Re-planning from the current scene after every edit
corrects ignored, wrong-object and drifted edits.
"""

from __future__ import annotations

from typing import Any, Mapping

from mira_env.shapes.grammar import Op, parse_ref, phrase
from mira_env.shapes.matching import match
from mira_env.shapes.refer import simplest_ref
from mira_env.shapes.scene import Obj, Scene


def _attr_diff(a: Obj, b: Obj) -> int:
    return (a.shape != b.shape) + (a.color != b.color) + (a.size != b.size)


def _pair_cost(a: Obj, b: Obj) -> float:
    diff = _attr_diff(a, b)
    if a.cell == b.cell:
        return float(diff)
    return float(min(1 + diff, 2)) - 0.01 * (diff == 0)  # prefer a plain move over remove + add


def _on(obj: Obj, scene: Scene, kind: str, **fields: Any) -> tuple[Op, str]:
    text_ref = simplest_ref(obj, scene)
    op = Op(kind, ref=parse_ref(text_ref), **fields)
    return op, phrase(op, text_ref)


def next_edit(scene: Scene | Mapping[str, Any], target: Scene | Mapping[str, Any]) -> tuple[Op, str] | None:
    """``(op, instruction)`` of the next edit from ``scene`` towards ``target``; ``None`` when equal."""
    scene = scene if isinstance(scene, Scene) else Scene.from_dict(scene)
    target = target if isinstance(target, Scene) else Scene.from_dict(target)
    if scene == target:
        return None
    if scene.background != target.background:
        op = Op("background", color=target.background)
        return op, phrase(op)
    pairs, extra, missing = match(scene.objects, target.objects, _pair_cost)
    moves: list[tuple[Obj, Obj]] = []
    for i, j in pairs:
        have, want = scene.objects[i], target.objects[j]
        if have.cell != want.cell:
            if _attr_diff(have, want) >= 2:
                extra.append(i)
                missing.append(j)
            else:
                moves.append((have, want))
            continue
        if have.shape != want.shape:
            return _on(have, scene, "replace", shape=want.shape)
        if have.color != want.color:
            return _on(have, scene, "recolor", color=want.color)
        if have.size != want.size:
            return _on(have, scene, "resize", size=want.size)
    for i in extra:
        return _on(scene.objects[i], scene, "remove")
    for have, want in moves:
        if scene.at(*want.cell) is None:
            return _on(have, scene, "move", cell=want.cell)
    for j in missing:
        want = target.objects[j]
        if scene.at(*want.cell) is None:
            op = Op("add", shape=want.shape, color=want.color, size=want.size, cell=want.cell)
            return op, phrase(op)
    # every remaining move or add is blocked by an object that must itself move: break the cycle
    free = scene.free_cells()
    for _have, want in moves:
        blocker = scene.at(*want.cell)
        if blocker is not None:
            if free:
                return _on(blocker, scene, "move", cell=free[0])
            return _on(blocker, scene, "remove")
    raise RuntimeError(f"planner found no executable edit from {scene} to {target}")  # pragma: no cover


def plan(scene: Scene | Mapping[str, Any], target: Scene | Mapping[str, Any], limit: int = 50) -> list[str]:
    """The full list of atomic instructions the planner would issue on an exact editor."""
    from mira_env.shapes.execute import apply_op

    scene = scene if isinstance(scene, Scene) else Scene.from_dict(scene)
    target = target if isinstance(target, Scene) else Scene.from_dict(target)
    steps = []
    for _ in range(limit):
        edit = next_edit(scene, target)
        if edit is None:
            return steps
        scene = apply_op(edit[0], scene)
        steps.append(edit[1])
    raise RuntimeError(f"planner did not reach the target within {limit} edits")  # pragma: no cover
