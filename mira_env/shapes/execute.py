"""Exact execution of parsed operations on scenes: resolving referring expressions and applying edits.

Every failure is an :class:`EditFailure` with a reason code, never a guess:

- ``no_match``: no object fits the referring expression;
- ``ambiguous``: several objects fit (or tie for a superlative);
- ``blocked``: the edit is impossible (target cell occupied, off the grid, already the largest size).
"""

from __future__ import annotations

from mira_env.errors import EditorError
from mira_env.shapes.ops import SUPERLATIVES, Op, Ref
from mira_env.shapes.scene import CELL_NAMES, DIRECTIONS, GRID, SIZE_RANK, SIZES, Obj, Scene

REASONS = ("parse_error", "no_match", "ambiguous", "blocked")


class EditFailure(EditorError):  # noqa: N818 - an expected outcome of an edit, reported in its status
    """An operation could not be executed on a scene; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _where(objects: list[Obj]) -> str:
    return ", ".join(CELL_NAMES[obj.cell] for obj in objects)


def _filter(ref: Ref, objects: tuple[Obj, ...] | list[Obj]) -> list[Obj]:
    return [obj for obj in objects
            if (ref.shape is None or obj.shape == ref.shape) and (ref.color is None or obj.color == ref.color)
            and (ref.size is None or obj.size == ref.size) and (ref.cell is None or obj.cell == ref.cell)]


def _related(relation: str, obj: Obj, anchor: Obj) -> bool:
    if relation == "left of":
        return obj.col < anchor.col
    if relation == "right of":
        return obj.col > anchor.col
    if relation == "above":
        return obj.row < anchor.row
    return obj.row > anchor.row  # below


def _value(obj: Obj, attribute: str) -> int:
    return SIZE_RANK[obj.size] if attribute == "size" else getattr(obj, attribute)


def candidates(ref: Ref, scene: Scene) -> list[Obj]:
    """Objects matching ``ref`` before uniqueness is required (superlatives applied, ties kept)."""
    found = _filter(ref, scene.objects)
    if ref.relation is not None:
        anchor = resolve(ref.anchor, scene)
        found = [obj for obj in found if obj != anchor and _related(ref.relation, obj, anchor)]
    if ref.superlative is not None and found:
        attribute, direction = SUPERLATIVES[ref.superlative]
        values = [_value(obj, attribute) for obj in found]
        best = max(values) if direction == "max" else min(values)
        found = [obj for obj, value in zip(found, values) if value == best]
    return found


def resolve(ref: Ref, scene: Scene) -> Obj:
    """The one object ``ref`` names in ``scene``; :class:`EditFailure` when none or several do."""
    found = candidates(ref, scene)
    if not found:
        raise EditFailure("no_match", f"no object matches {ref.text!r}")
    if len(found) > 1:
        kind = "tie for" if ref.superlative else "match"
        raise EditFailure("ambiguous", f"{ref.text!r} is ambiguous: {len(found)} objects {kind} it "
                                       f"(at {_where(found)}); add a colour, size, location or relation")
    return found[0]


def _require_free(scene: Scene, cell: tuple[int, int], moving: Obj | None = None) -> None:
    occupant = scene.at(*cell)
    if occupant is not None and occupant != moving:
        raise EditFailure("blocked", f"the {CELL_NAMES[cell]} is occupied by the {occupant.color} "
                                     f"{occupant.shape}; remove or move it first")


def apply_to(op: Op, scene: Scene, target: Obj | None) -> tuple[Scene, tuple[int, int] | None]:
    """Apply ``op`` to the already resolved ``target``; returns the new scene and the edited cell."""
    kind = op.kind
    if kind == "background":
        return Scene(op.color, scene.objects), None
    if kind == "add":
        _require_free(scene, op.cell)
        new = Obj(op.shape, op.color, op.size, op.cell[0], op.cell[1])
        return Scene.make(scene.background, scene.objects + (new,)), op.cell
    assert target is not None
    if kind == "remove":
        return scene.replace_object(target, None), None
    if kind == "recolor":
        return scene.replace_object(target, target._replace(color=op.color)), target.cell
    if kind == "replace":
        return scene.replace_object(target, target._replace(shape=op.shape)), target.cell
    if kind == "resize":
        size = op.size
        if size in ("bigger", "smaller"):
            rank = SIZE_RANK[target.size] + (1 if size == "bigger" else -1)
            if not 0 <= rank < len(SIZES):
                raise EditFailure("blocked", f"the {target.color} {target.shape} is already {target.size}; "
                                             f"it cannot get {size}")
            size = SIZES[rank]
        return scene.replace_object(target, target._replace(size=size)), target.cell
    if kind == "move":
        if op.direction is not None:
            drow, dcol = DIRECTIONS[op.direction]
            cell = (target.row + drow, target.col + dcol)
            if not (0 <= cell[0] < GRID and 0 <= cell[1] < GRID):
                raise EditFailure("blocked", f"the {target.color} {target.shape} in the {CELL_NAMES[target.cell]} "
                                             f"cannot move {op.direction}: it is at the edge of the grid")
        else:
            cell = op.cell
        _require_free(scene, cell, moving=target)
        return scene.replace_object(target, target._replace(row=cell[0], col=cell[1])), cell
    raise EditFailure("parse_error", f"unknown operation kind {kind!r}")


def apply_op(op: Op, scene: Scene) -> Scene:
    """Resolve ``op``'s referring expression in ``scene`` and apply it exactly."""
    target = resolve(op.ref, scene) if op.ref is not None else None
    return apply_to(op, scene, target)[0]

