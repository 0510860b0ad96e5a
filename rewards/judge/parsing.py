"""Robust extraction of 0-10 scores from a judge's free-text answer.

Tried in order, the first that yields numbers wins:

1. a JSON object anywhere in the text (also inside a ```json fence): its ``"score"`` / ``"scores"``
   value (a number or a list of numbers), else its numeric values of keys such as ``"SC"``, ``"PQ"``,
   ``"semantic_consistency"``, ``"perceptual_quality"``, ``"success"``, ``"overediting"``;
2. a bracketed list of numbers: ``[7, 8]``;
3. labelled values: ``SC: 7``, ``score = 7.5``, ``PQ - 8`` (label, then ``:``/``=``/``-``, number),
   with an optional ``/10`` after the number;
4. fractions ``7/10`` (or ``/5``, ``/100``: rescaled to 0-10);
5. an answer that is nothing but numbers and separators (``"7"``, ``"7, 8"``).

Numbers outside ``[0, scale]`` make the answer unparseable (a 12 on a 0-10 scale is not a score).
Unparseable answers give ``ParsedScores(None, reason)``; the caller keeps the raw text.
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
_ONLY_NUMBERS = re.compile(r"^[\s\[\]\(\),;]*" + _NUMBER + r"(?:[\s\[\]\(\),;]+" + _NUMBER + r")*[\s\[\]\(\),;.]*$")


@dataclass(frozen=True)
class ParsedScores:
    """The numbers found (``None`` when unparseable) and why parsing failed."""

    values: tuple[float, ...] | None
    reason: str | None = None
    method: str | None = None


def _json_objects(text: str):
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for candidate in candidates:
        start = candidate.find("{")
        while start != -1:
            depth = 0
            for end in range(start, len(candidate)):
                if candidate[end] == "{":
                    depth += 1
                elif candidate[end] == "}":
                    depth -= 1
                    if depth == 0:
                        try:
                            obj = json.loads(candidate[start:end + 1])
                        except (ValueError, RecursionError):
                            break
                        if isinstance(obj, dict):
                            yield obj
                        break
            start = candidate.find("{", start + 1)


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
    found: list[float] | None = None
    method = None
    attempts = (
        ("json", lambda: _from_json(text)),
        ("list", lambda: next(([float(x) for x in re.findall(_NUMBER, m.group(1))] for m in _BRACKET.finditer(text)),
                              None)),
        ("labelled", lambda: [float(m.group(2)) for m in _LABELLED.finditer(text)] or None),
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
