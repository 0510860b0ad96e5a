"""The judge reward terms: ``judge_sc``, ``judge_pq``, ``judge_overall``.

Scale: all three return VIEScore's 0-10 scale (``value_range = (0, 10)``); ``overall`` is
``sqrt(SC * PQ)``. ``None`` (with the reason, and the raw answer in ``last_results``) when the judge
could not answer or its answer was unparseable. Terms built on the same :class:`VLMJudge` share its
cache, so SC + PQ + overall cost two judge calls per item, not four.
"""

from __future__ import annotations

from typing import Sequence

from mira_env.reward_api import RewardInput
from mira_env.validate import check_choice

from mira_env.rewards.base import RewardTerm, Scores
from mira_env.rewards.errors import RewardConfigError, describe
from mira_env.rewards.judge.core import JudgeResult, VLMJudge

JUDGE_ASPECTS = ("sc", "pq", "overall")


class JudgeTerm(RewardTerm):
    """One aspect of a :class:`VLMJudge` as a reward term (0-10)."""

    value_range = (0.0, 10.0)

    def __init__(self, judge: VLMJudge, aspect: str = "overall", name: str | None = None) -> None:
        check_choice("judge aspect", aspect, JUDGE_ASPECTS, error=RewardConfigError)
        if not isinstance(judge, VLMJudge):
            raise RewardConfigError(f"judge={describe(judge)} must be a mira_env.rewards.judge.VLMJudge")
        self.judge, self.aspect = judge, aspect
        self.name = name or f"judge_{aspect}"
        self.last_results: list[JudgeResult] = []

    def _score(self, items: Sequence[RewardInput]) -> Scores:
        results = self.judge.score(items, self.aspect)
        self.last_results = results
        return Scores([r.score for r in results], [r.reason for r in results])

    def __repr__(self) -> str:
        return f"JudgeTerm(name={self.name!r}, aspect={self.aspect!r}, judge={self.judge.id!r})"
