"""The policy's action format: the one place that defines ``<STOP>``, ``<edit>`` and ``<think>``.

Every layer imports it from here: the env (``mira_env.env``), the rewards (``format`` term, TRL
adapter), the agents (prompt, baselines) and training (SFT targets, GRPO tool parsing).

After stripping surrounding whitespace a policy answer is::

    [<think>REASONING</think>]  then exactly one of   <edit>INSTRUCTION</edit>   |   <STOP>

- ``<think>REASONING</think>`` is optional; when present it comes first, appears once, and
  ``REASONING`` may be any text without the tags ``<think>``, ``</think>``, ``<edit>``, ``</edit>``
  or ``<STOP>``. Whitespace (including newlines) may separate it from what follows.
- ``<edit>INSTRUCTION</edit>``: ONE atomic instruction (e.g. ``add a red hat to the man``), in any
  language. ``INSTRUCTION`` has its whitespace runs collapsed to single spaces; it must be non-empty,
  at most ``max_length`` characters, free of control characters and of the tags above.
- ``<STOP>`` (any letter case): the edit is complete; the episode ends.
- Nothing else may follow the closing tag. Tags are lower case except ``<STOP>``.

Anything else is malformed: :func:`parse_action` returns ``action=""`` (which ``EditEnv`` counts as an
invalid, ``"empty"`` action) and an ``error`` naming what is wrong. :func:`format_action` writes the
format (the SFT target) and :func:`parse_action` reads it; :func:`is_well_formed` is the ``format``
reward's test. :data:`EDIT_PATTERN` finds the instruction of an ``<edit>`` block in free text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from mira_env.errors import ConfigError, describe
from mira_env.validate import check_int

STOP = "<STOP>"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
EDIT_OPEN, EDIT_CLOSE = "<edit>", "</edit>"
TAGS = (THINK_OPEN, THINK_CLOSE, EDIT_OPEN, EDIT_CLOSE, STOP)
DEFAULT_MAX_LENGTH = 512
#: The instruction inside ``<edit>...</edit>`` (group 1), searched in free text (DOTALL).
EDIT_PATTERN = re.compile(r"<edit>(.*?)</edit>", re.DOTALL)

_TAG_RE = re.compile(r"</?(?:think|edit)>|<stop>", re.IGNORECASE)


class ActionFormatError(ConfigError):
    """An action or reasoning passed to :func:`format_action` (or :func:`parse_action`) is not usable."""


def is_stop(action: str) -> bool:
    """Whether ``action`` (stripped) is ``<STOP>``, in any letter case."""
    return isinstance(action, str) and action.strip().lower() == STOP.lower()


def first_control_character(text: str) -> str | None:
    """The first control / unassigned / surrogate character of ``text`` (Unicode category C*), or None.

    Letters, marks, digits, punctuation, symbols and spaces of every script pass; ``\\t`` and
    ``\\n`` count as control characters (an atomic instruction is one line).
    """
    return next((ch for ch in text if unicodedata.category(ch).startswith("C")), None)


@dataclass(frozen=True)
class ParsedAction:
    """The result of :func:`parse_action`.

    ``action`` is the atomic instruction, ``"<STOP>"``, or ``""`` when the output is malformed
    (``ok`` is then False and ``error`` says why). ``reasoning`` is the ``<think>`` text, if any;
    ``text`` the raw model output.
    """

    action: str
    ok: bool
    error: str | None
    reasoning: str | None
    text: str = ""


def format_action(action: str, reasoning: str | None = None) -> str:
    """The answer text for ``action`` (the SFT target); :func:`parse_action` inverts it.

    ``format_action("add a hat")`` -> ``"<edit>add a hat</edit>"``; ``format_action("<STOP>")`` ->
    ``"<STOP>"``; with ``reasoning`` the answer starts with ``"<think>REASONING</think>\\n"``.
    """
    if not isinstance(action, str):
        raise ActionFormatError(f"action={describe(action)} must be a str (an atomic instruction or '<STOP>')")
    instruction = " ".join(action.split())
    if not instruction:
        raise ActionFormatError(f"action={action!r} is empty; pass an atomic instruction or '<STOP>'")
    if reasoning is not None:
        if not isinstance(reasoning, str):
            raise ActionFormatError(f"reasoning={describe(reasoning)} must be a str or None")
        tag = _TAG_RE.search(reasoning)
        if tag:
            raise ActionFormatError(f"reasoning contains the tag {tag.group(0)!r}; remove it")
    prefix = f"{THINK_OPEN}{reasoning.strip()}{THINK_CLOSE}\n" if reasoning is not None and reasoning.strip() else ""
    if is_stop(instruction):
        return prefix + STOP
    tag = _TAG_RE.search(instruction)
    if tag:
        raise ActionFormatError(f"action={instruction!r} contains the tag {tag.group(0)!r}; pass the bare instruction")
    return f"{prefix}{EDIT_OPEN}{instruction}{EDIT_CLOSE}"


def _preview(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def parse_action(text: str, max_length: int = DEFAULT_MAX_LENGTH) -> ParsedAction:
    """Parse a policy answer in the module's output format; never raises on model output.

    Returns ``ParsedAction(action, ok=True, error=None, reasoning)`` for a well-formed answer
    (``action`` is the whitespace-collapsed instruction or ``"<STOP>"``), else
    ``ParsedAction("", ok=False, error=<why>, reasoning)``.
    """
    if not isinstance(text, str):
        raise ActionFormatError(f"text={describe(text)} must be the decoded model output (a str)")
    check_int("max_length", max_length, error=ActionFormatError)

    def bad(error: str, reasoning: str | None = None) -> ParsedAction:
        return ParsedAction("", False, error, reasoning, text)

    rest = text.strip()
    if not rest:
        return bad("empty output")
    reasoning = None
    if rest.startswith(THINK_OPEN):
        end = rest.find(THINK_CLOSE)
        if end < 0:
            return bad("unclosed <think>: missing </think>")
        reasoning = rest[len(THINK_OPEN):end].strip()
        tag = _TAG_RE.search(reasoning)
        if tag:
            return bad(f"tag {tag.group(0)!r} inside <think></think>")
        rest = rest[end + len(THINK_CLOSE):].strip()
        if not rest:
            return bad("no <edit>...</edit> or <STOP> after </think>", reasoning)
    if rest[: len(STOP)].lower() == STOP.lower():
        trailing = rest[len(STOP):].strip()
        if trailing:
            return bad(f"text after <STOP>: {_preview(trailing)}", reasoning)
        return ParsedAction(STOP, True, None, reasoning, text)
    if not rest.startswith(EDIT_OPEN):
        return bad(f"expected <edit>...</edit> or <STOP>, got {_preview(rest)}", reasoning)
    end = rest.find(EDIT_CLOSE)
    if end < 0:
        return bad("unclosed <edit>: missing </edit>", reasoning)
    trailing = rest[end + len(EDIT_CLOSE):].strip()
    if trailing:
        return bad(f"text after </edit>: {_preview(trailing)}", reasoning)
    instruction = " ".join(rest[len(EDIT_OPEN):end].split())
    if not instruction:
        return bad("empty instruction inside <edit></edit>", reasoning)
    tag = _TAG_RE.search(instruction)
    if tag:
        return bad(f"tag {tag.group(0)!r} inside <edit></edit>", reasoning)
    odd = first_control_character(instruction)
    if odd is not None:
        return bad(f"control character {odd!r} in the instruction", reasoning)
    if len(instruction) > max_length:
        return bad(f"instruction has {len(instruction)} characters, over max_length={max_length}", reasoning)
    return ParsedAction(instruction, True, None, reasoning, text)


def is_well_formed(text: str, max_length: int = DEFAULT_MAX_LENGTH) -> bool:
    """Whether ``text`` is a well-formed answer (``parse_action(text, max_length).ok``)."""
    return isinstance(text, str) and parse_action(text, max_length).ok


def extract_edit(text: str) -> str | None:
    """The instruction of the first ``<edit>`` block in free text, whitespace-collapsed; None for
    ``<STOP>``, an empty block or no block (lenient: for scoring completions, not for the env)."""
    match = EDIT_PATTERN.search(text)
    if match is None:
        return None
    instruction = " ".join(match.group(1).split())
    return instruction or None


__all__ = [
    "DEFAULT_MAX_LENGTH", "EDIT_CLOSE", "EDIT_OPEN", "EDIT_PATTERN", "STOP", "TAGS", "THINK_CLOSE", "THINK_OPEN",
    "ActionFormatError", "ParsedAction", "extract_edit", "first_control_character", "format_action", "is_stop",
    "is_well_formed", "parse_action",
]
