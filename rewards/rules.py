"""Rule-based terms read from the episode record: output format, step cost, invalid actions.

- ``format``: the fraction of the policy's raw outputs (``RewardInput.raw_actions``, the env's
  received action strings) that are well formed: by default exactly what
  :func:`mira_env.actions.parse_action` accepts (one definition of the format, so the term and the
  parser never disagree); a custom ``pattern`` (full match, DOTALL) replaces that test for another
  answer format. Range ``[0, 1]``; an episode with no actions -> ``None``.
- ``step_cost``: the number of executed edits, ``len(trajectory)``. A COST (higher = more steps):
  give it a negative weight. Range ``[0, max_steps]`` (``max_steps`` is only used for normalisation).
- ``invalid_action``: the number of invalid actions (``RewardInput.invalid_actions``: empty,
  a control character, over-long). A COST: give it a negative weight. Range ``[0, max_steps]``.
"""

from __future__ import annotations

import re
from typing import Sequence

from mira_env.actions import is_well_formed
from mira_env.reward_api import RewardInput
from mira_env.validate import check_int

from mira_env.rewards.base import RewardTerm, Scores
from mira_env.rewards.errors import RewardConfigError, describe



class FormatReward(RewardTerm):
    """Fraction of well-formed raw policy outputs (see the module docstring)."""

    value_range = (0.0, 1.0)

    def __init__(self, pattern: str | None = None, name: str = "format") -> None:
        self.regex = None
        if pattern is not None:
            try:
                self.regex = re.compile(pattern, re.DOTALL)
            except (re.error, TypeError) as exc:
                raise RewardConfigError(f"format pattern={describe(pattern)} is not a valid regular expression: "
                                        f"{exc}") from None
        self.pattern = pattern
        self.name = name

    def matches(self, text: str) -> bool:
        """Whether one raw output has the expected format."""
        if not isinstance(text, str):
            return False
        return is_well_formed(text) if self.regex is None else self.regex.fullmatch(text) is not None

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
        check_int("max_steps", max_steps, error=RewardConfigError,
                  hint="used as the upper end of the term's range for normalisation")
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
