"""``InstructionText``: a Gymnasium ``Text`` space of instructions in any language.

Gymnasium's ``Text`` checks every character against a finite charset, and ``string.printable``
rejects every non-ASCII letter (a Chinese instruction, an accent, a curly quote). This space accepts
any text without control characters (the rule of :func:`mira_env.actions.first_control_character`),
optionally allowing the newline (observations join the history with it). Sampling stays in
``string.printable`` (without its control characters), which is a subset of what it contains.
"""

from __future__ import annotations

import string
from typing import Any

from gymnasium import spaces

from mira_env.actions import first_control_character

SAMPLE_CHARSET = "".join(ch for ch in string.printable if first_control_character(ch) is None)


class InstructionText(spaces.Text):
    """Text of ``min_length``..``max_length`` characters, any character but control characters.

    Args:
        max_length: the longest text (characters).
        min_length: the shortest text.
        allow_newline: accept ``"\\n"`` (the history observation joins instructions with it).
    """

    def __init__(self, max_length: int, *, min_length: int = 0, allow_newline: bool = False,
                 seed: Any = None) -> None:
        super().__init__(max_length, min_length=min_length, charset=SAMPLE_CHARSET, seed=seed)
        self.allow_newline = bool(allow_newline)

    def contains(self, x: Any) -> bool:
        if not isinstance(x, str) or not self.min_length <= len(x) <= self.max_length:
            return False
        return first_control_character(x.replace("\n", " ") if self.allow_newline else x) is None

    def __repr__(self) -> str:
        return (f"InstructionText({self.min_length}, {self.max_length}, any non-control character"
                f"{', newlines' if self.allow_newline else ''})")

    def __eq__(self, other: Any) -> bool:
        return (isinstance(other, InstructionText) and self.min_length == other.min_length
                and self.max_length == other.max_length and self.allow_newline == other.allow_newline)

    __hash__ = None  # mutable like every Space


__all__ = ["InstructionText", "SAMPLE_CHARSET"]
