"""CompositeReward arithmetic, weights, normalisation and missing-value policy."""

from __future__ import annotations

import math

import pytest

from mira_env.rewards import CompositeReward, RewardConfigError, RewardTerm, Scores
from tests.rewards.conftest import make_item, noise_image


class Fixed(RewardTerm):
    """A term returning given values (None = unscored) — a real term implementation, not a mock."""

    def __init__(self, name, values, value_range=(0.0, 10.0), reason="no answer"):
        self.name, self.values, self.value_range, self.reason = name, list(values), value_range, reason
        self.calls = 0

    def _score(self, items):
        self.calls += 1
        values = self.values[: len(items)]
        return Scores(values, [None if v is not None else self.reason for v in values])


class Broken(RewardTerm):
    name = "broken"
    value_range = (0.0, 1.0)

    def _score(self, items):
        raise RuntimeError("model exploded")


@pytest.fixture
def items():
    image = noise_image(3, 16)
    return [make_item(image, image) for _ in range(3)]


def test_weighted_sum_and_components(items):
    a, b, c = Fixed("a", [1, 2, 3]), Fixed("b", [10, 20, 30]), Fixed("c", [5, 5, 5])
    reward = CompositeReward([a, b, c], [2.0, -0.5, 0.0])
    outputs = reward.score(items)
    assert [o.total for o in outputs] == [2 * x - 0.5 * y for x, y in zip([1, 2, 3], [10, 20, 30])]
    assert outputs[1].components == {"a": 2.0, "b": 20.0, "c": 5.0}  # weight-0 term still logged
    assert all(o.errors == {} for o in outputs)
    assert a.calls == b.calls == c.calls == 1  # one batched call per term


def test_default_weights_are_one(items):
    outputs = CompositeReward([Fixed("a", [1, 2, 3]), Fixed("b", [1, 1, 1])]).score(items)
    assert [o.total for o in outputs] == [2.0, 3.0, 4.0]


def test_mapping_weights(items):
    outputs = CompositeReward([Fixed("a", [1, 2, 3]), Fixed("b", [1, 1, 1])], {"b": 3.0}).score(items)
    assert [o.total for o in outputs] == [4.0, 5.0, 6.0]


def test_weighted_none_makes_total_none_with_reason(items):
    reward = CompositeReward([Fixed("a", [1, None, 3], reason="judge timeout"), Fixed("b", [1, 1, 1])])
    outputs = reward.score(items)
    assert outputs[1].total is None
    assert outputs[1].components["a"] is None
    assert outputs[1].errors["a"] == "judge timeout"
    assert "judge timeout" in outputs[1].errors["total"] and "'a'" in outputs[1].errors["total"]
    assert outputs[0].total == 2.0 and outputs[2].total == 4.0


def test_unweighted_none_does_not_touch_total(items):
    outputs = CompositeReward([Fixed("a", [1, 2, 3]), Fixed("m", [None] * 3)], [1.0, 0.0]).score(items)
    assert [o.total for o in outputs] == [1.0, 2.0, 3.0]
    assert outputs[0].errors == {"m": "no answer"}


def test_skip_policy_leaves_out_missing(items):
    reward = CompositeReward([Fixed("a", [1, None, 3]), Fixed("b", [1, 1, None])], missing="skip")
    outputs = reward.score(items)
    assert [o.total for o in outputs] == [2.0, 1.0, 3.0]
    assert outputs[1].errors["total"] == "skipped unscored weighted term(s): a"


def test_broken_term_fails_its_items_only(items):
    outputs = CompositeReward([Fixed("a", [1, 2, 3]), Broken()], [1.0, 0.0]).score(items)
    assert [o.total for o in outputs] == [1.0, 2.0, 3.0]
    assert outputs[0].errors["broken"] == "broken: RuntimeError: model exploded"


def test_normalize_then_sum_range(items):
    a = Fixed("a", [0, 5, 10], value_range=(0.0, 10.0))
    b = Fixed("b", [-1, 0, 1], value_range=(-1.0, 1.0))
    outputs = CompositeReward([a, b], [1.0, 2.0], normalization="normalize_then_sum").score(items)
    assert [o.total for o in outputs] == pytest.approx([0.0 + 0.0, 0.5 + 1.0, 1.0 + 2.0])
    assert outputs[0].components == {"a": 0.0, "b": -1.0}  # components stay raw


def test_sum_then_normalize_range_maps_weighted_range_to_unit(items):
    a = Fixed("a", [0, 5, 10], value_range=(0.0, 10.0))
    b = Fixed("b", [0, 0.5, 1], value_range=(0.0, 1.0))
    outputs = CompositeReward([a, b], [1.0, -10.0], normalization="sum_then_normalize").score(items)
    # weighted sum ranges over [-10, 10]; (0-0)=0 -> 0.5; 5-5=0 -> 0.5; 10-10=0 -> 0.5
    assert [o.total for o in outputs] == pytest.approx([0.5, 0.5, 0.5])
    outputs = CompositeReward([a, Fixed("b", [1, 0.5, 0], (0.0, 1.0))], [1.0, -10.0],
                              normalization="sum_then_normalize").score(items)
    assert [o.total for o in outputs] == pytest.approx([0.0, 0.5, 1.0])


def test_batch_zscore(items):
    a = Fixed("a", [1, 2, 3], value_range=None)
    outputs = CompositeReward([a], normalization="normalize_then_sum", norm_stats="batch").score(items)
    std = math.sqrt(2 / 3)
    assert [o.total for o in outputs] == pytest.approx([-1 / std, 0.0, 1 / std], rel=1e-4)
    outputs = CompositeReward([a], [3.0], normalization="sum_then_normalize", norm_stats="batch").score(items)
    assert [o.total for o in outputs] == pytest.approx([-1 / std, 0.0, 1 / std], rel=1e-4)


@pytest.mark.parametrize("kwargs, message", [
    ({"weights": [1.0]}, "weights has 1 entries for 2 terms ['a', 'b']; pass exactly one weight per term (0 = log only)"),
    ({"weights": [1.0, float("nan")]}, "term 'b' weight=nan (type float) must be a finite number"),
    ({"weights": {"zz": 1.0}}, "weights name unknown term(s) ['zz']; the terms are ['a', 'b']"),
    ({"normalization": "softmax"},
     "normalization='softmax' (type str) is not one of: 'none', 'normalize_then_sum', 'sum_then_normalize'"),
    ({"missing": "zero"}, "missing='zero' (type str) is not one of: 'none', 'skip'"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(RewardConfigError) as info:
        CompositeReward([Fixed("a", []), Fixed("b", [])], **kwargs)
    assert str(info.value) == message


def test_range_normalisation_needs_ranges():
    with pytest.raises(RewardConfigError, match="term 'a' has value_range=None"):
        CompositeReward([Fixed("a", [], value_range=None)], normalization="normalize_then_sum")


def test_duplicate_names_rejected():
    with pytest.raises(RewardConfigError, match="two terms are named 'a'"):
        CompositeReward([Fixed("a", []), Fixed("a", [])])


def test_scores_turn_nonfinite_into_none():
    scores = Scores([1.0, float("inf"), None])
    assert list(scores) == [1.0, None, None]
    assert scores.reasons == [None, "non-finite value inf", "unscored (no reason given)"]
