"""The reward-term contract: score a batch, one ``float | None`` per item, reasons kept.

A term is any object with a ``name``, a declared ``value_range`` (``(low, high)`` or ``None`` when
unbounded; used only by range normalisation) and ``score(items) -> Scores``. :class:`Scores` IS a
``list[float | None]`` (so a term's output can be used as plain numbers) that also carries
``reasons[i]``: why item ``i`` is ``None``. ``None`` means "could not score" (missing input, judge
answer unparseable, model error); a term never turns a failure into a silent 0.

:class:`RewardTerm` is the convenience base class: subclasses implement ``_score(items)`` returning
values (``None`` allowed) or a :class:`Scores`; exceptions raised there fail the whole batch with the
exception text as reason, so one broken model never crashes a long run.
"""

from __future__ import annotations

import math
from typing import Iterable, Protocol, Sequence, runtime_checkable

from mira_env.reward_api import RewardInput


class Scores(list):
    """A ``list[float | None]`` with one reason (``str | None``) per item: why it is ``None``."""

    def __init__(self, values: Iterable[float | None] = (), reasons: Iterable[str | None] | None = None):
        values = [None if v is None else float(v) for v in values]
        super().__init__(values)
        reasons = [None] * len(values) if reasons is None else list(reasons)
        if len(reasons) != len(values):
            raise ValueError(f"Scores: {len(values)} values but {len(reasons)} reasons")
        for index, value in enumerate(values):
            if value is not None and not math.isfinite(value):
                reasons[index] = reasons[index] or f"non-finite value {value!r}"
                self[index] = None
            elif value is None and not reasons[index]:
                reasons[index] = "unscored (no reason given)"
        self.reasons: list[str | None] = reasons

    @classmethod
    def failed(cls, count: int, reason: str) -> "Scores":
        """``count`` unscored items sharing one reason."""
        return cls([None] * count, [reason] * count)

    def __repr__(self) -> str:
        failed = sum(v is None for v in self)
        return f"Scores({list(self)!r}" + (f", {failed} unscored)" if failed else ")")


@runtime_checkable
class Term(Protocol):
    """What :class:`~mira_env.rewards.composite.CompositeReward` needs from a term."""

    name: str
    value_range: tuple[float, float] | None

    def score(self, items: Sequence[RewardInput]) -> Scores: ...


class RewardTerm:
    """Base class of the built-in terms. Subclasses set ``name`` / ``value_range`` and implement ``_score``."""

    name: str = "term"
    value_range: tuple[float, float] | None = None
    #: "higher is better" (True) or a distance / cost (False); documentation and the audit's sign.
    higher_is_better: bool = True

    def _score(self, items: Sequence[RewardInput]) -> Sequence[float | None] | Scores:
        raise NotImplementedError

    def score(self, items: Sequence[RewardInput]) -> Scores:
        """Score ``items``; never raises for a model failure (every item gets ``None`` + the reason)."""
        items = list(items)
        if not items:
            return Scores()
        try:
            result = self._score(items)
        except Exception as exc:  # noqa: BLE001 - a failing term is data; see module docstring
            return Scores.failed(len(items), f"{self.name}: {type(exc).__name__}: {exc}")
        if not isinstance(result, Scores):
            result = Scores(result)
        if len(result) != len(items):
            return Scores.failed(len(items), f"{self.name} returned {len(result)} scores for {len(items)} items")
        return result

    def __call__(self, items: Sequence[RewardInput]) -> Scores:
        return self.score(items)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
