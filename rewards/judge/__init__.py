"""VIEScore / EditScore-style VLM judges: SC and PQ (0-10) and overall = sqrt(SC * PQ).

Backends (each imported only when chosen): :class:`~mira_env.rewards.judge.transformers_backend.TransformersJudge`
(local VLM), :class:`~mira_env.rewards.judge.openai_backend.OpenAIJudge` (OpenAI-compatible endpoint),
:class:`~mira_env.rewards.judge.editscore_backend.EditScoreJudge` (the ``editscore`` package). Put one behind a
:class:`VLMJudge` (cache) and expose aspects with :class:`JudgeTerm`.
"""

from __future__ import annotations

from mira_env.rewards.judge.core import JudgeCache, JudgeRequest, JudgeResult, PromptedBackend, VLMJudge
from mira_env.rewards.judge.parsing import ParsedScores, parse_scores
from mira_env.rewards.judge.terms import JUDGE_ASPECTS, JudgeTerm

__all__ = ["JUDGE_ASPECTS", "JudgeCache", "JudgeRequest", "JudgeResult", "JudgeTerm", "ParsedScores",
           "PromptedBackend", "VLMJudge", "parse_scores"]
