"""Rule-based terms read from the episode record: output format, step cost, invalid actions.

- ``format``: the fraction of the policy's raw outputs (``RewardInput.raw_actions``, the env's
  received action strings) that match ``pattern`` (full match, DOTALL). The default pattern is the
  policy output format of ``agents/prompt.py``: optional reasoning in ``<think>...</think>`` (first,
  once, no tags inside), then exactly one ``<edit>INSTRUCTION</edit>`` (non-blank, no tags inside)
  or ``<STOP>`` (any case), nothing after it; surrounding whitespace allowed. The length and
  printable-character limits of the instruction are the env's business (``invalid_action``).
  ``rewards`` must not import ``agents``, so the pattern is configurable. Range ``[0, 1]``; an
  episode with no actions -> ``None``.
- ``step_cost``: the number of executed edits, ``len(trajectory)``. A COST (higher = more steps):
  give it a negative weight. Range ``[0, max_steps]`` (``max_steps`` is only used for normalisation).
- ``invalid_action``: the number of invalid actions (``RewardInput.invalid_actions``: empty,
  non-printable, over-long). A COST: give it a negative weight. Range ``[0, max_steps]``.
"""

from __future__ import annotations

import re
from typing import Sequence

from mira_env.reward_api import RewardInput

from rewards.base import RewardTerm, Scores
from rewards.errors import RewardConfigError, describe

_NO_TAG = r"(?:(?!</?think>|</?edit>|(?i:<stop>)).)"
#: ``[<think>...</think>] (<edit>non-blank</edit> | <STOP>)`` with optional surrounding whitespace.
DEFAULT_FORMAT_PATTERN = (r"\s*(?:<think>" + _NO_TAG + r"*</think>\s*)?"
                          r"(?:<edit>(?!\s*</edit>)" + _NO_TAG + r"*</edit>|(?i:<stop>))\s*")


class FormatReward(RewardTerm):
    """Fraction of raw policy outputs that fully match ``pattern`` (see the module docstring)."""

    value_range = (0.0, 1.0)

    def __init__(self, pattern: str = DEFAULT_FORMAT_PATTERN, name: str = "format") -> None:
        try:
            self.regex = re.compile(pattern, re.DOTALL)
        except (re.error, TypeError) as exc:
            raise RewardConfigError(f"format pattern={describe(pattern)} is not a valid regular expression: {exc}")
        self.pattern = pattern
        self.name = name

    def matches(self, text: str) -> bool:
        """Whether one raw output has the expected format."""
        return isinstance(text, str) and self.regex.fullmatch(text) is not None

    def _score(self, items: Sequence[RewardInput]) -> Scores:
        values, reasons = [], []
        for item in items:
            actions = list(item.raw_actions)
            if not actions:
                values.append(None)
                reasons.append("no raw actions recorded (RewardInput.raw_actions is empty)")
                continue
            values.append(sum(self.matches(a) for a in actions) / len(actions))
            reasons.append(None)
        return Scores(values, reasons)


class _CountTerm(RewardTerm):
    higher_is_better = False

    def __init__(self, name: str, max_steps: int = 10) -> None:
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise RewardConfigError(f"max_steps={describe(max_steps)} must be a positive int (used as the "
                                    "upper end of the term's range for normalisation)")
        self.name = name
        self.max_steps = max_steps
        self.value_range = (0.0, float(max_steps))


class StepCost(_CountTerm):
    """``len(trajectory)``: the number of executed edits (a cost; give it a negative weight)."""

    def __init__(self, max_steps: int = 10, name: str = "step_cost") -> None:
        super().__init__(name, max_steps)

    def _score(self, items):
        return [float(len(item.trajectory)) for item in items]


class InvalidActionPenalty(_CountTerm):
    """``RewardInput.invalid_actions``: how many actions were invalid (a cost; give it a negative weight)."""

    def __init__(self, max_steps: int = 10, name: str = "invalid_action") -> None:
        super().__init__(name, max_steps)

    def _score(self, items):
        return [float(item.invalid_actions) for item in items]
