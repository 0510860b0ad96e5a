"""The exact McNemar test for two policies on the same tasks (mira_env.agents.intervals.mcnemar_test)."""

from __future__ import annotations

import pytest

from mira_env.agents.intervals import mcnemar_test


def test_mcnemar_is_the_exact_binomial_test_on_discordant_tasks():
    first = [True] * 30 + [False] * 70
    second = [True] * 30 + [True] * 10 + [False] * 60  # 10 tasks solved only by the second, none only by the first
    result = mcnemar_test(first, second)
    assert result["second_only"] == 10 and result["first_only"] == 0
    assert result["p_value"] == pytest.approx(2 * 0.5 ** 10)
    balanced = mcnemar_test([True, False] * 10, [False, True] * 10)
    assert balanced["second_only"] == balanced["first_only"] == 10 and balanced["p_value"] == pytest.approx(1.0)
    assert mcnemar_test([False, True], [False, True])["p_value"] == 1.0


def test_mcnemar_refuses_unpaired_results():
    with pytest.raises(ValueError, match="differ in length: 1 vs 2"):
        mcnemar_test([True], [True, False])
