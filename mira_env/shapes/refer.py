"""Referring-expression generation: a text that names exactly one object of a scene.

Kinds: ``"attribute"`` (the fewest attributes that single the object out: 'the circle', 'the red
circle', 'the small red circle'), ``"location"`` ('the circle in the top left', always unique),
``"superlative"`` ('the largest triangle', 'the leftmost shape') and ``"relation"`` ('the square left
of the blue star'). Every generated text is checked by parsing and resolving it.
"""

from __future__ import annotations

import random
from functools import lru_cache

from mira_env.shapes.execute import EditFailure, resolve
from mira_env.shapes.grammar import ParseError, parse_ref
from mira_env.shapes.scene import CELL_NAMES, Obj, Scene

REF_KINDS = ("attribute", "location", "superlative", "relation")
_SUPERLATIVE_WORDS = {("size", "max"): ("largest", "biggest"), ("size", "min"): ("smallest",),
                      ("col", "min"): ("leftmost",), ("col", "max"): ("rightmost",),
                      ("row", "min"): ("topmost", "highest"), ("row", "max"): ("bottommost", "lowest")}
_RELATION_WORDS = {"left of": ("left of", "to the left of"), "right of": ("right of", "to the right of"),
                   "above": ("above",), "below": ("below", "under")}


@lru_cache(maxsize=65536)
def _names(text: str, scene: Scene, obj: Obj) -> bool:
    try:
        return resolve(parse_ref(text), scene) == obj
    except (ParseError, EditFailure):
        return False


def names(text: str, scene: Scene, obj: Obj) -> bool:
    """Whether the referring expression ``text`` resolves to exactly ``obj`` in ``scene``."""
    return _names(text, scene, obj)


def attribute_refs(obj: Obj, scene: Scene) -> list[str]:
    """Unique attribute descriptions of ``obj``, fewest words first."""
    options = [f"the {obj.shape}", f"the {obj.color} {obj.shape}", f"the {obj.size} {obj.shape}",
               f"the {obj.color} shape", f"the {obj.size} {obj.color} {obj.shape}"]
    found = [text for text in options if names(text, scene, obj)]
    shortest = min((len(t.split()) for t in found), default=0)
    return [text for text in found if len(text.split()) == shortest]


def location_ref(obj: Obj, noun: str | None = None) -> str:
    return f"the {noun or obj.shape} in the {CELL_NAMES[obj.cell]}"


def superlative_refs(obj: Obj, scene: Scene) -> list[str]:
    out = []
    for words in _SUPERLATIVE_WORDS.values():
        for noun in (obj.shape, "shape", f"{obj.color} {obj.shape}", f"{obj.color} shape"):
            text = f"the {words[0]} {noun}"
            if names(text, scene, obj):
                out.append(text)
                if len(words) > 1:
                    out.append(f"the {words[1]} {noun}")
                break
    return out


def relation_refs(obj: Obj, scene: Scene) -> list[str]:
    out = []
    for anchor in scene.objects:
        if anchor == obj:
            continue
        anchor_texts = attribute_refs(anchor, scene)
        if not anchor_texts:
            continue
        anchor_text = anchor_texts[0]
        for words in _RELATION_WORDS.values():
            for noun in (obj.shape, f"{obj.color} {obj.shape}", "shape"):
                text = f"the {noun} {words[0]} {anchor_text}"
                if names(text, scene, obj):
                    out.extend(f"the {noun} {w} {anchor_text}" for w in words)
                    break
    return out


def refer(obj: Obj, scene: Scene, kind: str = "attribute", rng: random.Random | None = None) -> str | None:
    """A referring expression of ``kind`` for ``obj`` in ``scene`` (random among the valid ones when
    ``rng`` is given, else the first), or ``None`` when that kind cannot single it out."""
    if kind == "attribute":
        options = attribute_refs(obj, scene)
    elif kind == "location":
        options = [location_ref(obj), location_ref(obj, "shape")]
    elif kind == "superlative":
        options = superlative_refs(obj, scene)
    elif kind == "relation":
        options = relation_refs(obj, scene)
    else:
        raise ValueError(f"unknown referring-expression kind {kind!r}; use one of {REF_KINDS}")
    if not options:
        return None
    return options[rng.randrange(len(options))] if rng is not None else options[0]


def simplest_ref(obj: Obj, scene: Scene) -> str:
    """The shortest attribute description, else the location description (always unique)."""
    return refer(obj, scene, "attribute") or location_ref(obj)
