"""Robust extraction of 0-10 scores from a judge's free-text answer.

Tried in order, the first that yields numbers wins:

1. a JSON object anywhere in the text (also inside a ```json fence, or nested in another object): its
   ``"score"`` / ``"scores"`` value (a number or a list of numbers), else its numeric values of keys such
   as ``"SC"``, ``"PQ"``, ``"semantic_consistency"``, ``"perceptual_quality"``, ``"success"``,
   ``"overediting"``. Objects are read by a real JSON decoder, so braces inside strings do not confuse it;
2. labelled values: ``SC: 7``, ``score = 7.5``, ``PQ - 8`` (label, then ``:``/``=``/``-``, number),
   with an optional ``/10`` after the number;
3. a bracketed list of numbers: ``[7, 8]`` (not a reference such as ``Image [1]``);
4. fractions ``7/10`` (or ``/5``, ``/100``: rescaled to 0-10);
5. an answer that is nothing but numbers and separators (``"7"``, ``"7, 8"``).

Numbers outside ``[0, scale]`` make the answer unparseable (a 12 on a 0-10 scale is not a score).
Unparseable answers give ``ParsedScores(None, reason)``; the caller keeps the raw text. Parsing is
linear in the answer's length: at most :data:`MAX_JSON_STARTS` objects are tried and only the first
:data:`MAX_ANSWER_CHARS` characters are read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_NUMBER = r"-?\d+(?:\.\d+)?"
_LABELS = ("score", "scores", "sc", "pq", "semantic_consistency", "perceptual_quality", "success",
           "editing_success", "overediting", "over_editing", "naturalness", "artifacts", "artifact",
           "consistency", "quality", "prompt_following", "overall", "rating")
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
_BRACKET = re.compile(r"\[\s*(" + _NUMBER + r"(?:\s*,\s*" + _NUMBER + r")*)\s*\]")
_LABELLED = re.compile(r"\b(" + "|".join(_LABELS) + r")\b\s*(?:score)?\s*[:=\-]\s*(" + _NUMBER + r")(\s*/\s*10\b)?",
                       re.IGNORECASE)
_FRACTION = re.compile(r"(" + _NUMBER + r")\s*/\s*(5|10|100)\b")
_REFERENCE = re.compile(r"(?:image|img|picture|figure|fig\.?|photo|source|edited|step|turn|ref|reference)\s*$",
                        re.IGNORECASE)
_DECODER = json.JSONDecoder()
#: the most ``{`` positions a JSON object is tried at (a long answer of braces stays linear)
MAX_JSON_STARTS = 256
#: the longest answer read; judges answer in a few hundred characters
MAX_ANSWER_CHARS = 65_536
_ONLY_NUMBERS = re.compile(r"^[\s\[\]\(\),;]*" + _NUMBER + r"(?:[\s\[\]\(\),;]+" + _NUMBER + r")*[\s\[\]\(\),;.]*$")


@dataclass(frozen=True)
class ParsedScores:
    """The numbers found (``None`` when unparseable) and why parsing failed."""

    values: tuple[float, ...] | None
    reason: str | None = None
    method: str | None = None


def _nested(obj):
    """``obj`` and every dict nested in its values, outermost first."""
    queue = [obj]
    while queue:
        current = queue.pop(0)
        yield current
        for value in current.values():
            if isinstance(value, dict):
                queue.append(value)
            elif isinstance(value, list):
                queue.extend(v for v in value if isinstance(v, dict))


def _json_objects(text: str):
    """Every JSON object in ``text`` (fenced blocks first), decoded by ``json``: strings may hold braces."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    tries = 0
    for candidate in candidates:
        start = candidate.find("{")
        while start != -1 and tries < MAX_JSON_STARTS:
            tries += 1
            try:
                obj, end = _DECODER.raw_decode(candidate, start)
            except (ValueError, RecursionError):
                start = candidate.find("{", start + 1)
                continue
            if isinstance(obj, dict):
                yield from _nested(obj)
            start = candidate.find("{", end)


def _bracket_lists(text: str) -> list[float] | None:
    for match in _BRACKET.finditer(text):
        if _REFERENCE.search(text[max(0, match.start() - 16):match.start()]):
            continue  # "Image [1]": a reference, not a score
        return [float(x) for x in re.findall(_NUMBER, match.group(1))]
    return None


def _numbers(value) -> list[float] | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, str) and re.fullmatch(r"\s*" + _NUMBER + r"\s*", value):
        return [float(value)]
    if isinstance(value, (list, tuple)) and value:
        out = []
        for v in value:
            got = _numbers(v)
            if got is None or len(got) != 1:
                return None
            out.extend(got)
        return out
    return None


def _from_json(text: str) -> list[float] | None:
    for obj in _json_objects(text):
        lowered = {str(k).lower(): v for k, v in obj.items()}
        for key in ("score", "scores"):
            if key in lowered:
                got = _numbers(lowered[key])
                if got:
                    return got
        got = [n for key in _LABELS[2:] if key in lowered for n in (_numbers(lowered[key]) or [])]
        if got:
            return got
    return None


def parse_scores(text: object, scale: float = 10.0) -> ParsedScores:
    """Scores in ``[0, scale]`` found in ``text`` (see the module docstring for the accepted forms)."""
    if not isinstance(text, str) or not text.strip():
        return ParsedScores(None, "empty answer" if isinstance(text, str) else f"answer is {type(text).__name__}")
    text = text[:MAX_ANSWER_CHARS]
    found: list[float] | None = None
    method = None
    attempts = (
        ("json", lambda: _from_json(text)),
        ("labelled", lambda: [float(m.group(2)) for m in _LABELLED.finditer(text)] or None),
        ("list", lambda: _bracket_lists(text)),
        ("fraction", lambda: [float(m.group(1)) * 10.0 / float(m.group(2)) * (scale / 10.0)
                              for m in _FRACTION.finditer(text)] or None),
        ("numbers", lambda: [float(x) for x in re.findall(_NUMBER, text)] if _ONLY_NUMBERS.match(text) else None),
    )
    for name, attempt in attempts:
        found = attempt()
        if found:
            method = name
            break
    if not found:
        return ParsedScores(None, "no score found in the answer")
    bad = [v for v in found if not 0.0 <= v <= scale]
    if bad:
        return ParsedScores(None, f"score(s) {bad} outside [0, {scale:g}]", method)
    return ParsedScores(tuple(found), None, method)
