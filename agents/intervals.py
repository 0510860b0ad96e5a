"""95% confidence intervals for result tables (scipy): Wilson for success rates, Student's t for means.

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


__all__ = ["CONFIDENCE", "SUFFIX", "mean_interval", "wilson_interval"]
