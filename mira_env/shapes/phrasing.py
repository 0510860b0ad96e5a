"""Phrasing operations as text: the templates the task generator draws from (:data:`PHRASINGS`; the parser in
:mod:`mira_env.shapes.grammar` accepts all of them) and :func:`phrase`, which fills one in for an :class:`Op`."""

from __future__ import annotations

from mira_env.shapes.ops import Op
from mira_env.shapes.scene import CELL_NAMES

#: phrasing templates the task generator draws from (the parser accepts all of them)
PHRASINGS: dict[str, tuple[str, ...]] = {
    "add": ("add {desc} at the {cell}", "draw {desc} in the {cell}", "put {desc} in the {cell}",
            "place {desc} at the {cell}", "insert {desc} in the {cell}"),
    "remove": ("remove {ref}", "delete {ref}", "erase {ref}", "get rid of {ref}", "take away {ref}"),
    "recolor": ("make {ref} {color}", "paint {ref} {color}", "turn {ref} {color}",
                "change the color of {ref} to {color}", "recolor {ref} to {color}", "color {ref} {color}"),
    "move": ("move {ref} to the {cell}", "relocate {ref} to the {cell}", "place {ref} at the {cell}",
             "put {ref} in the {cell}"),
    "shift": ("move {ref} one step {direction}", "shift {ref} one cell {direction}", "nudge {ref} {direction}",
              "slide {ref} {direction}"),
    "resize": ("make {ref} {size}", "resize {ref} to {size}", "change the size of {ref} to {size}",
               "scale {ref} to {size}"),
    "bigger": ("make {ref} bigger", "enlarge {ref}", "make {ref} larger"),
    "smaller": ("make {ref} smaller", "shrink {ref}"),
    "replace": ("replace {ref} with {article} {shape}", "turn {ref} into {article} {shape}",
                "change {ref} into {article} {shape}", "swap {ref} for {article} {shape}"),
    "background": ("make the background {color}", "change the background to {color}",
                   "paint the background {color}", "set the background color to {color}"),
}


def article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def describe_new(shape: str, color: str, size: str) -> str:
    """'a small red circle' / 'an orange star'."""
    words = ([] if size == "medium" else [size]) + [color, shape]
    return f"{article(words[0])} {' '.join(words)}"


def phrasing_key(op: Op) -> str:
    if op.kind == "move" and op.direction is not None:
        return "shift"
    if op.kind == "resize" and op.size in ("bigger", "smaller"):
        return op.size
    return op.kind


def phrase(op: Op, ref_text: str | None = None, variant: int = 0) -> str:
    """Text for ``op`` using phrasing number ``variant`` (mod the count) and ``ref_text`` for its object."""
    templates = PHRASINGS[phrasing_key(op)]
    template = templates[variant % len(templates)]
    ref = ref_text if ref_text is not None else (op.ref.text if op.ref is not None else "")
    fields = {"ref": ref, "color": op.color or "", "size": op.size or "", "shape": op.shape or "",
              "article": article(op.shape or "x"), "direction": op.direction or "",
              "cell": CELL_NAMES.get(op.cell, "") if op.cell else ""}
    if op.kind == "add":
        fields["desc"] = describe_new(op.shape, op.color, op.size)
    return template.format(**fields)


__all__ = ["PHRASINGS", "article", "describe_new", "phrase", "phrasing_key"]
