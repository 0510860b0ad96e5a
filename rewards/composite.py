"""``CompositeReward``: weighted terms -> one total per item, with every component logged.

It implements :class:`mira_env.reward_api.RewardFunction` (``score(items) -> list[RewardOutput]``),
so ``EditEnv(reward=CompositeReward(...))`` shows each term in ``info["reward_components"]``.

Arithmetic (``x_i`` = raw value of term ``i`` for one item, ``w_i`` its weight):

- ``normalization="none"``: ``total = sum_i w_i * x_i``.
- ``normalization="normalize_then_sum"``: ``total = sum_i w_i * n_i(x_i)``, each term normalised first.
- ``normalization="sum_then_normalize"``: ``total = n(sum_i w_i * x_i)``, the weighted sum normalised.

The normaliser ``n`` depends on ``norm_stats``:

- ``"range"`` (default, batch-independent): a term's declared ``value_range = (lo, hi)`` maps to
  ``[0, 1]`` with ``(x - lo) / (hi - lo)``; for the sum, the range of ``sum_i w_i x_i`` implied by
  the terms' ranges and the signs of the weights maps to ``[0, 1]``. A weighted term without a
  declared range cannot be range-normalised: construction raises.
- ``"batch"``: z-score over the scored items of ONE ``score`` call, ``(x - mean) / (std + eps)``
  (population std). A batch with one scored item or constant values normalises to 0. Use it when a
  ``score`` call is one GRPO group (``BatchedEditEnv.reset_group``); with batches of one it is
  meaningless.

Components are always the RAW term values (``components[name] = x_i``, weight-0 terms included: a
weight of 0 makes a term a logged metric that never touches the total).

Missing values (a term returned ``None`` for an item; its reason goes to ``errors[name]``):

- ``missing="none"`` (default): if any term with a non-zero weight is ``None``, the item's total is
  ``None`` and ``errors["total"]`` names the term and its reason. The environment then reports
  ``reward_scored=False``. Nothing is silently replaced by 0.
- ``missing="skip"``: the unscored weighted terms are left out of that item's sum (and of its range
  under ``sum_then_normalize``); ``errors["total"]`` lists what was skipped. All weighted terms
  missing -> ``None``.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from mira_env.reward_api import RewardInput, RewardOutput
from mira_env.validate import check_float

from mira_env.rewards.base import Scores, Term
from mira_env.rewards.errors import RewardConfigError, choice_error, describe

NORMALIZATIONS = ("none", "normalize_then_sum", "sum_then_normalize")
NORM_STATS = ("range", "batch")
MISSING_POLICIES = ("none", "skip")


def _check_weight(name: str, weight: object) -> float:
    return float(check_float(f"term {name!r} weight", weight, error=RewardConfigError))


class CompositeReward:
    """A weighted combination of reward terms (see the module docstring for the exact arithmetic).

    Args:
        terms: a sequence of terms (each with ``name``, ``value_range``, ``score(items)``), or a
            mapping ``name -> term`` (the mapping key overrides nothing: names must match).
        weights: one weight per term (same order), a mapping ``name -> weight`` (missing names get
            1.0), or ``None`` (all 1.0).
        normalization: ``"none"`` | ``"normalize_then_sum"`` | ``"sum_then_normalize"``.
        norm_stats: ``"range"`` | ``"batch"``.
        missing: ``"none"`` | ``"skip"``.
        eps: added to the std under batch normalisation.
    """

    def __init__(self, terms: Sequence[Term] | Mapping[str, Term], weights: Sequence[float] | Mapping[str, float] | None = None,
                 normalization: str = "none", norm_stats: str = "range", missing: str = "none",
                 eps: float = 1e-6) -> None:
        if isinstance(terms, Mapping):
            terms = list(terms.values())
        if isinstance(terms, (str, bytes)) or not isinstance(terms, Sequence) or not terms:
            raise RewardConfigError(f"terms={describe(terms)} must be a non-empty list of reward terms")
        names: list[str] = []
        for index, term in enumerate(terms):
            if not callable(getattr(term, "score", None)) or not isinstance(getattr(term, "name", None), str):
                raise RewardConfigError(f"terms[{index}]={describe(term)} is not a reward term: it needs a str "
                                        "`name` and a `score(items)` method (see mira_env.rewards.base.RewardTerm)")
            if term.name in names:
                raise RewardConfigError(f"two terms are named {term.name!r}; term names must be unique "
                                        "(pass name=... when building the second one)")
            names.append(term.name)
        if weights is None:
            weight_list = [1.0] * len(terms)
        elif isinstance(weights, Mapping):
            unknown = sorted(set(weights) - set(names))
            if unknown:
                raise RewardConfigError(f"weights name unknown term(s) {unknown}; the terms are {names}")
            weight_list = [_check_weight(n, weights.get(n, 1.0)) for n in names]
        else:
            if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence):
                raise RewardConfigError(f"weights={describe(weights)} must be a list of numbers, a mapping or None")
            if len(weights) != len(terms):
                raise RewardConfigError(f"weights has {len(weights)} entries for {len(terms)} terms {names}; "
                                        "pass exactly one weight per term (0 = log only)")
            weight_list = [_check_weight(n, w) for n, w in zip(names, weights)]
        if normalization not in NORMALIZATIONS:
            raise choice_error("normalization", normalization, NORMALIZATIONS)
        if norm_stats not in NORM_STATS:
            raise choice_error("norm_stats", norm_stats, NORM_STATS)
        if missing not in MISSING_POLICIES:
            raise choice_error("missing", missing, MISSING_POLICIES)
        if normalization != "none" and norm_stats == "range":
            for term, weight in zip(terms, weight_list):
                rng = getattr(term, "value_range", None)
                if weight != 0 and (rng is None or not rng[1] > rng[0]):
                    raise RewardConfigError(
                        f"term {term.name!r} has value_range={rng!r}, so normalization={normalization!r} with "
                        "norm_stats='range' cannot normalise it; give the term a range, use norm_stats='batch', "
                        "or normalization='none'")
        if not (isinstance(eps, (int, float)) and eps > 0):
            raise RewardConfigError(f"eps={describe(eps)} must be a positive number")
        self.terms: list[Term] = list(terms)
        self.weights: list[float] = weight_list
        self.normalization = normalization
        self.norm_stats = norm_stats
        self.missing = missing
        self.eps = float(eps)

    @property
    def names(self) -> list[str]:
        """The term names, in order (the keys of ``RewardOutput.components``)."""
        return [t.name for t in self.terms]

    @property
    def component_names(self) -> tuple[str, ...]:
        """The keys of every output's ``components``: ``EditEnv`` shows them in ``info`` at every step."""
        return tuple(self.names)

    @property
    def value_range(self) -> tuple[float, float] | None:
        """The range of the total: ``(0, 1)`` under range normalisation, else the implied weighted range."""
        if self.normalization != "none" and self.norm_stats == "range":
            return (0.0, 1.0) if self.normalization == "sum_then_normalize" else self._sum_range(
                [i for i, w in enumerate(self.weights) if w != 0], normalized=True)
        return self._sum_range([i for i, w in enumerate(self.weights) if w != 0])

    def _sum_range(self, indices: Sequence[int], normalized: bool = False) -> tuple[float, float] | None:
        low = high = 0.0
        for i in indices:
            rng = (0.0, 1.0) if normalized else getattr(self.terms[i], "value_range", None)
            if rng is None:
                return None
            a, b = self.weights[i] * rng[0], self.weights[i] * rng[1]
            low, high = low + min(a, b), high + max(a, b)
        return (low, high)

    # ------------------------------------------------------------------ scoring
    def score_terms(self, items: Sequence[RewardInput]) -> dict[str, Scores]:
        """Every term's raw :class:`Scores` for ``items`` (a term that raises fails its items, with the reason)."""
        results: dict[str, Scores] = {}
        for term in self.terms:
            try:
                scores = term.score(items)
                if not isinstance(scores, Scores):
                    scores = Scores(scores)
                if len(scores) != len(items):
                    scores = Scores.failed(len(items), f"returned {len(scores)} scores for {len(items)} items")
            except Exception as exc:  # noqa: BLE001 - recorded per item
                scores = Scores.failed(len(items), f"{type(exc).__name__}: {exc}")
            results[term.name] = scores
        return results

    def _normalize_term(self, index: int, values: Scores) -> list[float | None]:
        if self.norm_stats == "range":
            lo, hi = self.terms[index].value_range
            return [None if v is None else (v - lo) / (hi - lo) for v in values]
        return self._zscore(list(values))

    def _zscore(self, values: list[float | None]) -> list[float | None]:
        present = [v for v in values if v is not None]
        if len(present) < 2:
            return [None if v is None else 0.0 for v in values]
        mean = sum(present) / len(present)
        std = math.sqrt(sum((v - mean) ** 2 for v in present) / len(present))
        return [None if v is None else (v - mean) / (std + self.eps) for v in values]

    def score(self, items: Sequence[RewardInput]) -> list[RewardOutput]:
        items = list(items)
        raw = self.score_terms(items)
        names = self.names
        weighted = [i for i, w in enumerate(self.weights) if w != 0]
        values = {name: list(raw[name]) for name in names}
        if self.normalization == "normalize_then_sum":
            for i in weighted:
                values[names[i]] = self._normalize_term(i, raw[names[i]])
        totals: list[float | None] = []
        errors: list[dict[str, str]] = []
        present_sets: list[list[int]] = []
        for row in range(len(items)):
            err = {name: raw[name].reasons[row] for name in names if raw[name][row] is None}
            missing = [i for i in weighted if values[names[i]][row] is None]
            present = [i for i in weighted if values[names[i]][row] is not None]
            total: float | None
            if not weighted:
                total, err["total"] = None, "every term has weight 0: nothing to sum"
            elif missing and (self.missing == "none" or not present):
                listed = "; ".join(f"{names[i]!r}: {err.get(names[i])}" for i in missing)
                total, err["total"] = None, f"weighted term(s) unscored -> total is None ({listed})"
            else:
                if missing:
                    err["total"] = "skipped unscored weighted term(s): " + ", ".join(names[i] for i in missing)
                total = sum(self.weights[i] * values[names[i]][row] for i in present)
            totals.append(total)
            errors.append(err)
            present_sets.append(present)
        if self.normalization == "sum_then_normalize":
            if self.norm_stats == "batch":
                totals = self._zscore(totals)
            else:
                for row, total in enumerate(totals):
                    if total is not None:
                        lo, hi = self._sum_range(present_sets[row])
                        totals[row] = (total - lo) / (hi - lo) if hi > lo else 0.0
        return [RewardOutput(total=totals[row], components={name: raw[name][row] for name in names},
                             errors=errors[row]) for row in range(len(items))]

    def __call__(self, items: Sequence[RewardInput]) -> list[RewardOutput]:
        return self.score(items)

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}={w:g}" for n, w in zip(self.names, self.weights))
        return f"CompositeReward({parts}, normalization={self.normalization!r}, norm_stats={self.norm_stats!r})"


class MergedReward:
    """Scores with a primary reward (its total is the RL reward) and adds the components of metric rewards.

    Logs metric terms (a composite with weights 0) beside, e.g., the shapes world's oracle reward. ``primary`` may
    be ``None`` (the first metric's total is the total then); ``metrics`` is one reward, a sequence of them, or
    ``None``. On a name clash the primary's component wins, then the earlier metric's.
    """

    def __init__(self, primary: object = None, metrics: object = None) -> None:
        self.primary = primary
        if metrics is None:
            self.metrics: tuple = ()
        elif isinstance(metrics, (list, tuple)):
            self.metrics = tuple(m for m in metrics if m is not None)
        else:
            self.metrics = (metrics,)
        for reward in (primary, *self.metrics):
            if reward is not None and not callable(getattr(reward, "score", None)):
                raise RewardConfigError(f"MergedReward got {describe(reward)}, which has no score(items) method")

    @property
    def component_names(self) -> tuple[str, ...]:
        """Every component of every reward (the keys ``EditEnv`` shows in ``info`` at every step)."""
        names = [name for reward in (*self.metrics, self.primary) for name in getattr(reward, "component_names", ())]
        return tuple(dict.fromkeys(names))

    @property
    def names(self) -> list[str]:
        """The metric rewards' term names (what ``mira eval`` notes when none could be scored)."""
        return [name for reward in self.metrics for name in (getattr(reward, "names", None) or [])]

    def score(self, items: Sequence[RewardInput]) -> list[RewardOutput]:
        parts = [reward.score(items) if reward is not None else [None] * len(items)
                 for reward in (self.primary, *self.metrics)]
        outputs = []
        for index in range(len(items)):
            components: dict = {}
            errors: dict = {}
            for output in reversed([part[index] for part in parts]):  # the primary last: it wins clashes
                if output is not None:
                    components.update(output.components)
                    errors.update(output.errors)
            totals = [part[index].total for part in parts if part[index] is not None]
            primary = parts[0][index]
            total = primary.total if primary is not None else (totals[0] if totals else None)
            outputs.append(RewardOutput(total, components, errors))
        return outputs
