"""The atomic-instruction grammar of the shapes world: parsing text into operations (:class:`Op`, defined in
:mod:`mira_env.shapes.ops`, with :class:`Ref` and :class:`ParseError`); :mod:`mira_env.shapes.phrasing` phrases
them back into text (re-exported here: :func:`phrase`, :data:`PHRASINGS`, :func:`phrasing_key`).

Operations: ``add``, ``remove``, ``recolor``, ``move`` (to a cell, or one step in a direction),
``resize`` (to a size, or bigger / smaller), ``replace`` (the shape), ``background``. Objects are
named by referring expressions:

- attributes: ``the red circle``, ``the large blue square``, ``the green shape``;
- location: ``the circle in the top left``, ``the shape at the center``;
- spatial relation: ``the square left of the blue star`` (``left of``, ``to the right of``,
  ``above``, ``below``; one level, the anchor itself named by attributes/location);
- superlative: ``the largest triangle``, ``the leftmost shape``, ``the lowest red object``.

Several phrasings per operation are accepted (:data:`PHRASINGS` lists the ones the task generator
uses). A compound instruction (clauses joined by ``and`` / ``then`` / ``,`` / ``;``) parses into
several operations. Failures raise :class:`ParseError` with a message naming the bad word.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from mira_env.shapes.ops import GENERIC_NOUNS, OPERATIONS, RELATIONS, SUPERLATIVES, Op, ParseError, Ref
from mira_env.shapes.phrasing import PHRASINGS, article, describe_new, phrase, phrasing_key
from mira_env.shapes.scene import BACKGROUNDS, CELL_NAMES, COLORS, DIRECTIONS, SHAPES, SIZES

_WORD_SYNONYMS = {"colour": "color", "grey": "gray", "centre": "center", "big": "large", "tiny": "small",
                  "little": "small", "violet": "purple", "recolour": "recolor", "upward": "up", "upwards": "up",
                  "downward": "down", "downwards": "down", "larger": "bigger"}
_CELL_ALIASES = {name: cell for cell, name in CELL_NAMES.items()}
_CELL_ALIASES.update({
    "upper left": (0, 0), "top middle": (0, 1), "upper right": (0, 2), "left middle": (1, 0),
    "center left": (1, 0), "middle": (1, 1), "right middle": (1, 2), "center right": (1, 2),
    "lower left": (2, 0), "bottom middle": (2, 1), "lower right": (2, 2), "top": (0, 1), "bottom": (2, 1),
})


# ---------------------------------------------------------------------------------------- normalising
def normalize(text: str) -> str:
    """Lower case, hyphens to spaces, end punctuation and 'please' dropped, synonyms folded."""
    text = text.lower().replace("-", " ").replace("\u2019", "'")
    text = re.sub(r"[!?\"]", " ", text)
    words = [_WORD_SYNONYMS.get(word, word) for word in text.split()]
    text = " ".join(words).strip(" .")
    text = re.sub(r"^(?:please |can you |could you )+", "", text)
    text = re.sub(r" please$", "", text)
    return text


_SPLIT = re.compile(r"\s*(?:[;.]\s*|,\s*and then\s+|,\s*then\s+|\s+and then\s+|\s+then\s+|,\s*and\s+|\s+and\s+|,\s*)")
_LEAD = re.compile(r"^(?:(?:first|next|then|finally|lastly|afterwards|after that|also|and)\s*,?\s+)+")


def split_clauses(text: str) -> list[str]:
    """The clauses of a (possibly compound) normalised instruction, connectives stripped."""
    clauses = []
    for part in _SPLIT.split(text):
        part = _LEAD.sub("", part.strip()).strip(" ,")
        if part:
            clauses.append(part)
    return clauses


# ---------------------------------------------------------------------------------------- vocabulary
def _cell(words: str) -> tuple[int, int]:
    words = re.sub(r"(?: corner| cell| square| of the (?:image|canvas|picture|grid))+$", "", words.strip())
    words = re.sub(r"^(?:very )", "", words)
    if words in _CELL_ALIASES:
        return _CELL_ALIASES[words]
    raise ParseError(f"unknown location {words!r}; use one of: {', '.join(CELL_NAMES.values())}")


def _color(word: str) -> str:
    if word in COLORS:
        return word
    raise ParseError(f"unknown colour {word!r}; object colours are: {', '.join(COLORS)}")


def _background(word: str) -> str:
    if word in BACKGROUNDS:
        return word
    raise ParseError(f"unknown background colour {word!r}; backgrounds are: {', '.join(BACKGROUNDS)}")


def _shape(word: str) -> str:
    if word in SHAPES:
        return word
    raise ParseError(f"unknown shape {word!r}; shapes are: {', '.join(SHAPES)}")


def _article_desc(text: str) -> tuple[str, str, str]:
    """``(shape, color, size)`` of an indefinite description such as 'a small red circle'."""
    words = text.split()
    if words and words[0] in ("a", "an", "one"):
        words = words[1:]
    if not words:
        raise ParseError("missing the shape to add")
    shape = _shape(words[-1])
    size, color = "medium", None
    for word in words[:-1]:
        if word in SIZES:
            size = word
        elif word in COLORS:
            color = word
        else:
            raise ParseError(f"unknown word {word!r} in {text!r}; describe a new object as "
                             f"'a [size] <colour> <shape>'")
    if color is None:
        raise ParseError(f"no colour given in {text!r}; say which colour to add, e.g. 'a red {shape}'")
    return shape, color, size


# ---------------------------------------------------------------------------------------- references
_RELATION = re.compile(r" (?:to the )?(left of|right of|above|below|under|beneath|underneath) the ")
_RELATION_CANON = {"under": "below", "beneath": "below", "underneath": "below"}
_LOCATION = re.compile(r" (?:in|at|on) the ([a-z ]+)$")


@lru_cache(maxsize=16384)
def parse_ref(text: str, allow_relation: bool = True) -> Ref:
    """Parse a definite referring expression ('the ...'); :class:`ParseError` on anything else (cached)."""
    original = text
    text = text.strip()
    if text in ("it", "them", "this", "that", "this one", "that one", "it again"):
        raise ParseError(f"cannot resolve the pronoun {text!r}: name the object (e.g. 'the red circle')")
    if not text.startswith("the "):
        raise ParseError(f"cannot parse the referring expression {original!r}: it must start with 'the'")
    body = text[4:]
    relation = anchor = None
    match = _RELATION.search(" " + body)
    if match:
        if not allow_relation:
            raise ParseError(f"nested spatial relations are not supported in {original!r}")
        head = (" " + body)[: match.start()].strip()
        relation = _RELATION_CANON.get(match.group(1), match.group(1))
        anchor = parse_ref("the " + (" " + body)[match.end():], allow_relation=False)
        body = head
    cell = None
    match = _LOCATION.search(body)
    if match:
        cell = _cell(match.group(1))
        body = body[: match.start()]
    words = body.split()
    if not words:
        raise ParseError(f"cannot parse the referring expression {original!r}: no object named")
    noun = words[-1]
    if noun in SHAPES:
        shape = noun
    elif noun in GENERIC_NOUNS:
        shape = None
    else:
        raise ParseError(f"unknown shape {noun!r} in {original!r}; shapes are: {', '.join(SHAPES)} "
                         f"(or 'shape' / 'object')")
    superlative = size = color = None
    for index, word in enumerate(words[:-1]):
        if word in SUPERLATIVES and index == 0:
            superlative = word
        elif word in SIZES and size is None:
            size = word
        elif word in COLORS and color is None:
            color = word
        else:
            raise ParseError(f"unknown word {word!r} in the referring expression {original!r}")
    return Ref(text=original.strip(), shape=shape, color=color, size=size, cell=cell, superlative=superlative,
               relation=relation, anchor=anchor)


# ---------------------------------------------------------------------------------------- clauses
def _op_background(m: dict[str, str]) -> Op:
    return Op("background", color=_background(m["color"]))


def _op_add(m: dict[str, str]) -> Op:
    shape, color, size = _article_desc(m["desc"])
    return Op("add", shape=shape, color=color, size=size, cell=_cell(m["cell"]))


def _op_remove(m: dict[str, str]) -> Op:
    return Op("remove", ref=parse_ref(m["ref"]))


def _op_replace(m: dict[str, str]) -> Op:
    return Op("replace", ref=parse_ref(m["ref"]), shape=_shape(m["shape"]))


def _op_recolor(m: dict[str, str]) -> Op:
    return Op("recolor", ref=parse_ref(m["ref"]), color=_color(m["color"]))


def _op_make(m: dict[str, str]) -> Op:
    word = m["word"]
    if word in COLORS:
        return Op("recolor", ref=parse_ref(m["ref"]), color=word)
    if word in SIZES:
        return Op("resize", ref=parse_ref(m["ref"]), size=word)
    if word in ("bigger", "smaller"):
        return Op("resize", ref=parse_ref(m["ref"]), size=word)
    raise ParseError(f"unknown colour or size {word!r}; colours are: {', '.join(COLORS)}; sizes are: "
                     f"{', '.join(SIZES)}, bigger, smaller")


def _op_resize(m: dict[str, str]) -> Op:
    size = m["size"]
    if size not in SIZES and size not in ("bigger", "smaller"):
        raise ParseError(f"unknown size {size!r}; sizes are: {', '.join(SIZES)}, bigger, smaller")
    return Op("resize", ref=parse_ref(m["ref"]), size=size)


def _op_grow(m: dict[str, str]) -> Op:
    return Op("resize", ref=parse_ref(m["ref"]), size="bigger")


def _op_shrink(m: dict[str, str]) -> Op:
    return Op("resize", ref=parse_ref(m["ref"]), size="smaller")


def _op_move_to(m: dict[str, str]) -> Op:
    return Op("move", ref=parse_ref(m["ref"]), cell=_cell(m["cell"]))


def _op_move_dir(m: dict[str, str]) -> Op:
    return Op("move", ref=parse_ref(m["ref"]), direction=m["dir"])


_C = r"(?P<color>[a-z]+)"
_V_MOVE_TO = r"(?:move|put|place|relocate|shift|slide|drag)"
_V_MOVE_DIR = r"(?:move|shift|nudge|slide|push|drag)"
#: ``(head, tail, builder)``: a clause reads as ``head REF tail`` (``tail is None``: no referring expression,
#: ``head`` is the whole pattern). REF may end at any word boundary: every split is tried (see :func:`readings`).
_PATTERNS: list[tuple[re.Pattern, re.Pattern | None, Any]] = [
    (re.compile(h), None if t is None else re.compile(t), f) for h, t, f in [
        (r"^(?:make|paint|turn|color|set|change|switch|recolor) the background(?: color)? (?:to |into |in )?"
         + _C + "$", None, _op_background),
        (r"^(?:change|set|switch) the color of the background to " + _C + "$", None, _op_background),
        (r"^(?:add|draw|put|place|insert|create) (?P<desc>(?:a|an|one) [a-z ]+?) (?:in|at|into|to|on) the "
         r"(?P<cell>[a-z ]+)$", None, _op_add),
        (r"^(?:remove|delete|erase|get rid of|take away|take out|eliminate) ", r"$", _op_remove),
        (r"^(?:replace|swap|substitute) ", r" (?:with|for|by) (?:a|an) (?P<shape>[a-z]+)$", _op_replace),
        (r"^(?:turn|change|transform|convert|morph) ", r" into (?:a|an) (?P<shape>[a-z]+)$", _op_replace),
        (r"^(?:change|set|switch) the color of ", r" to " + _C + "$", _op_recolor),
        (r"^(?:change|set|switch|scale|resize) the size of ", r" to (?P<size>[a-z]+)$", _op_resize),
        (r"^(?:resize|scale) ", r" to (?:be )?(?:a |an )?(?P<size>[a-z]+)(?: size)?$", _op_resize),
        (r"^(?:recolor|color|paint|dye|change) ", r" (?:to|in) " + _C + "$", _op_recolor),
        (r"^(?:recolor|color|paint|dye|turn) ", r" " + _C + "$", _op_recolor),
        (r"^make ", r" (?P<word>[a-z]+)$", _op_make),
        (r"^(?:enlarge|grow|expand) ", r"$", _op_grow),
        (r"^(?:shrink|reduce) ", r"$", _op_shrink),
        (r"^" + _V_MOVE_TO + " ", r" (?:to|into|in|at) the (?P<cell>[a-z ]+)$", _op_move_to),
        (r"^" + _V_MOVE_DIR + " ", r" (?:one (?:step|cell|space|square) )?(?:to the )?(?P<dir>left|right|up|down)$",
         _op_move_dir),
    ]]


def _meaning(op: Op) -> Op:
    """``op`` without the wording of its referring expressions: two texts mean the same when these are equal."""
    def strip(ref: Ref | None) -> Ref | None:
        return None if ref is None else ref._replace(text="", anchor=strip(ref.anchor))
    return op._replace(ref=strip(op.ref))


def _describe_reading(op: Op) -> str:
    parts = [op.kind] + [f"{name}={value!r}" for name, value in op.to_dict().items() if name != "op"]
    return " ".join(parts)


def readings(text: str) -> tuple[list[Op], ParseError | None]:
    """Every distinct meaning of the normalised clause ``text`` under every pattern and every place its
    referring expression may end, and the first error met (when there is no meaning)."""
    found: dict[Op, Op] = {}
    first_error: ParseError | None = None
    for head, tail, build in _PATTERNS:
        match = head.match(text)
        if match is None:
            continue
        if tail is None:
            candidates = [match.groupdict()]
        else:
            candidates = []
            start = match.end()
            for end in [i for i, ch in enumerate(text) if ch == " " and i > start] + [len(text)]:
                rest = tail.fullmatch(text, end)
                if rest is not None and text[start:end].strip():
                    candidates.append(dict(rest.groupdict(), ref=text[start:end]))
        for parts in candidates:
            try:
                op = build(parts)
            except ParseError as exc:
                first_error = first_error or exc
                continue
            found.setdefault(_meaning(op), op)
    return list(found.values()), first_error


def parse_clause(text: str) -> Op:
    """One normalised clause -> :class:`Op`.

    A clause with two meanings (``slide the shape in the center right``: move 'the shape in the center' one
    step right, or move 'the shape' to the middle right) is outside the grammar: :class:`ParseError` names both.
    """
    ops, first_error = readings(text)
    if len(ops) == 1:
        return ops[0]
    if len(ops) > 1:
        raise ParseError(f"{text!r} reads {len(ops)} ways ({'; '.join(_describe_reading(op) for op in ops)}); "
                         f"reword it, e.g. 'one step right' for a direction or 'to the <cell>' for a destination")
    if first_error is not None:
        raise first_error
    raise ParseError(f"no known operation in {text!r}; start with add, remove, make, paint, move, resize, "
                     f"replace or change the background")


@lru_cache(maxsize=8192)
def _parse_cached(text: str) -> tuple[tuple[Op, ...], tuple[str, ...], str | None]:
    normal = normalize(text)
    if not normal:
        return (), (), "empty instruction"
    clauses = split_clauses(normal)
    if not clauses:
        return (), (), "empty instruction"
    ops, errors = [], []
    for clause in clauses:
        try:
            ops.append(parse_clause(clause))
            errors.append("")
        except ParseError as exc:
            ops.append(None)
            errors.append(str(exc))
    return tuple(ops), tuple(errors), None


def parse_clauses(text: str) -> list[tuple[Op | None, str | None]]:
    """Every clause of ``text`` as ``(op, None)`` or ``(None, error message)``; cached by text.

    Raises :class:`ParseError` only when nothing is left of ``text`` (empty instruction).
    """
    ops, errors, fatal = _parse_cached(text)
    if fatal:
        raise ParseError(fatal)
    return [(op, error or None) for op, error in zip(ops, errors)]


def parse_instruction(text: str) -> list[Op]:
    """All operations of ``text``; :class:`ParseError` with the first clause's error on any failure."""
    result = []
    for op, error in parse_clauses(text):
        if op is None:
            raise ParseError(error)
        result.append(op)
    return result


__all__ = ["DIRECTIONS", "GENERIC_NOUNS", "OPERATIONS", "Op", "PHRASINGS", "ParseError", "RELATIONS", "Ref",
           "SUPERLATIVES", "article", "describe_new", "normalize", "parse_clause", "parse_clauses", "parse_instruction",
           "parse_ref", "phrase", "phrasing_key", "readings", "split_clauses"]
