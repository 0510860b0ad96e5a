"""Merging a session's atomic turns into one complex instruction, in order or shuffled.

In order (``"ordered"``), the turns are joined with sequencing words, so the sentence asks for the
edits in the session's order::

    ["add a hat to the dog", "Make the sky pink.", "remove the car"]
    -> "Add a hat to the dog, then make the sky pink, then remove the car."

Shuffled (``"shuffled"``), the clauses are permuted with a seeded generator and joined without
sequencing words (``"Remove the car, add a hat to the dog and make the sky pink."``): the policy must
plan the order itself. The record's atomic trajectory keeps the session's order either way.
Shuffling turns that refer to earlier ones ("make *it* red") can produce sentences whose referents
come late; that is the paper's recipe, opt-in with ``orders=("ordered", "shuffled")``.
"""

from __future__ import annotations

import hashlib
import random
from typing import Sequence

from mira_env.errors import ConfigError, choice_message, describe

ORDERS = ("ordered", "shuffled")


def clause(text: str) -> str:
    """A turn as a clause: whitespace collapsed, trailing sentence punctuation removed, first letter lower
    case unless the first word looks like a name or an acronym (``"NYC"``, ``"I"``)."""
    words = " ".join(str(text).split()).rstrip(" .!;,")
    if not words:
        return words
    first = words.split(" ", 1)[0]
    if len(first) > 1 and first[1:].islower() or first.islower():
        return words[0].lower() + words[1:]
    return words


def _sentence(text: str) -> str:
    sentence = text[0].upper() + text[1:]
    return sentence if sentence.endswith((".", "!", "?")) else sentence + "."


def merge_ordered(turns: Sequence[str]) -> str:
    """The turns as one sentence that keeps their order (``"A, then b, then c."``)."""
    clauses = _clauses(turns)
    return _sentence(", then ".join(clauses))


def shuffle_seed(seed: int, key: str) -> int:
    """The seed used to shuffle the turns of session ``key`` (stable across runs and machines)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "big")


def shuffled_order(count: int, seed: int, key: str) -> list[int]:
    """A seeded permutation of ``range(count)`` that differs from the identity whenever ``count > 1``."""
    order = list(range(count))
    if count < 2:
        return order
    rng = random.Random(shuffle_seed(seed, key))
    while order == sorted(order):
        rng.shuffle(order)
    return order


def merge_shuffled(turns: Sequence[str], seed: int, key: str) -> str:
    """The turns in a seeded shuffled order, joined with commas and a final "and" (no sequencing words)."""
    clauses = _clauses(turns)
    permuted = [clauses[i] for i in shuffled_order(len(clauses), seed, key)]
    joined = permuted[0] if len(permuted) == 1 else ", ".join(permuted[:-1]) + " and " + permuted[-1]
    return _sentence(joined)


def merge(turns: Sequence[str], order: str = "ordered", *, seed: int = 0, key: str = "") -> str:
    """One complex instruction from ``turns``; ``order`` is ``"ordered"`` or ``"shuffled"``."""
    if order == "ordered":
        return merge_ordered(turns)
    if order == "shuffled":
        return merge_shuffled(turns, seed, key)
    raise ConfigError(choice_message("order", order, ORDERS))


def _clauses(turns: Sequence[str]) -> list[str]:
    if isinstance(turns, str) or not turns:
        raise ConfigError(f"turns={describe(turns)} must be a non-empty list of instructions")
    clauses = [clause(t) for t in turns]
    empty = [i for i, c in enumerate(clauses) if not c]
    if empty:
        raise ConfigError(f"turn(s) {empty} are empty; every turn needs an instruction")
    return clauses
