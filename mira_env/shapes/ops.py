"""The operations of the shapes world: :class:`Op` (one atomic edit) and :class:`Ref` (a referring expression),
the words they are built from, and :class:`ParseError`.

:mod:`mira_env.shapes.grammar` parses text into these; :mod:`mira_env.shapes.phrasing` writes them back as text;
:mod:`mira_env.shapes.execute` applies them to a scene.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from mira_env.errors import EditorError
from mira_env.shapes.scene import CELL_NAMES

OPERATIONS = ("add", "remove", "recolor", "move", "resize", "replace", "background")
RELATIONS = ("left of", "right of", "above", "below")
#: superlative word -> (attribute, "min" | "max")
SUPERLATIVES = {
    "largest": ("size", "max"), "biggest": ("size", "max"), "smallest": ("size", "min"),
    "leftmost": ("col", "min"), "rightmost": ("col", "max"), "topmost": ("row", "min"),
    "highest": ("row", "min"), "uppermost": ("row", "min"), "bottommost": ("row", "max"),
    "lowest": ("row", "max"),
}
GENERIC_NOUNS = ("shape", "object", "thing")


class ParseError(EditorError):
    """An instruction is outside the grammar; the message names the part that could not be read."""


class Ref(NamedTuple):
    """A referring expression: attribute filters, optional location, relation and superlative."""

    text: str
    shape: str | None = None
    color: str | None = None
    size: str | None = None
    cell: tuple[int, int] | None = None
    superlative: str | None = None
    relation: str | None = None
    anchor: "Ref | None" = None


class Op(NamedTuple):
    """One atomic operation; unused fields are ``None``."""

    kind: str
    ref: Ref | None = None
    shape: str | None = None
    color: str | None = None
    size: str | None = None        # a size name, or "bigger" / "smaller" for resize
    cell: tuple[int, int] | None = None
    direction: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description (the referring expression as its text)."""
        out: dict[str, Any] = {"op": self.kind}
        if self.ref is not None:
            out["target"] = self.ref.text
        for name in ("shape", "color", "size", "direction"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.cell is not None:
            out["cell"] = CELL_NAMES[self.cell]
        return out


__all__ = ["GENERIC_NOUNS", "OPERATIONS", "Op", "ParseError", "RELATIONS", "Ref", "SUPERLATIVES"]
