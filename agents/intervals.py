"""95% confidence intervals for result tables (scipy): Wilson for success rates, Student's t for means; the exact
McNemar test for two policies' successes on the same tasks.

Episodes are treated as independent draws. Members of one GRPO group share their task and editor seeds, so with
``group_size > 1`` the intervals are optimistic; compare agents on the same seeds (paired) for tight claims.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

#: the confidence level of every interval in ``mira run`` / ``mira eval`` tables
CONFIDENCE = 0.95
#: the suffix of an interval's key beside its value in a summary row: ``success_rate_ci95 = [low, high]``
SUFFIX = "_ci95"


def _check_level(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence!r} must be in (0, 1)")


def wilson_interval(successes: int, trials: int, confidence: float = CONFIDENCE) -> list[float] | None:
    """The Wilson score interval ``[low, high]`` of a success rate; ``None`` without trials."""
    _check_level(confidence)
    if not 0 <= successes <= trials:
        raise ValueError(f"successes={successes!r} must be in [0, trials={trials!r}]")
    if trials == 0:
        return None
    from scipy.stats import binomtest

    interval = binomtest(int(successes), int(trials)).proportion_ci(confidence_level=confidence, method="wilson")
    return [float(interval.low), float(interval.high)]


def mean_interval(values: Iterable[float | None], confidence: float = CONFIDENCE) -> list[float] | None:
    """The Student-t interval ``[low, high]`` of the mean of ``values`` (``None`` / NaN left out); ``None`` with
    fewer than two values. Identical values give the zero-width interval ``[v, v]``."""
    _check_level(confidence)
    numbers: Sequence[float] = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if len(numbers) < 2:
        return None
    from scipy import stats

    mean = sum(numbers) / len(numbers)
    error = float(stats.sem(numbers))
    if error == 0.0:
        return [mean, mean]
    low, high = stats.t.interval(confidence, len(numbers) - 1, loc=mean, scale=error)
    return [float(low), float(high)]


def mcnemar_test(first: Sequence[bool], second: Sequence[bool]) -> dict:
    """The exact McNemar test of two policies' successes on the SAME tasks (same editor seeds): a two-sided binomial
    test on the discordant tasks. Returns ``{"second_only", "first_only", "p_value"}`` (p = 1 without discordant
    tasks)."""
    if len(first) != len(second):
        raise ValueError(f"paired results differ in length: {len(first)} vs {len(second)} (score both policies on "
                         f"the same tasks)")
    only_second = sum(1 for a, b in zip(first, second) if b and not a)
    only_first = sum(1 for a, b in zip(first, second) if a and not b)
    discordant = only_first + only_second
    if discordant == 0:
        return {"second_only": 0, "first_only": 0, "p_value": 1.0}
    from scipy.stats import binomtest

    return {"second_only": only_second, "first_only": only_first,
            "p_value": float(binomtest(only_second, discordant, 0.5).pvalue)}


__all__ = ["CONFIDENCE", "SUFFIX", "mcnemar_test", "mean_interval", "wilson_interval"]
