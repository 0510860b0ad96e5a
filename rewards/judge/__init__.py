"""VIEScore / EditScore-style VLM judges: SC and PQ (0-10) and overall = sqrt(SC * PQ).

Backends (each imported only when chosen): :class:`~rewards.judge.transformers_backend.TransformersJudge`
(local VLM), :class:`~rewards.judge.openai_backend.OpenAIJudge` (OpenAI-compatible endpoint),
:class:`~rewards.judge.editscore_backend.EditScoreJudge` (the ``editscore`` package). Put one behind a
:class:`VLMJudge` (cache) and expose aspects with :class:`JudgeTerm`.
"""

from __future__ import annotations

from rewards.judge.core import JudgeCache, JudgeRequest, JudgeResult, PromptedBackend, VLMJudge
from rewards.judge.parsing import ParsedScores, parse_scores
from rewards.judge.terms import JUDGE_ASPECTS, JudgeTerm

__all__ = ["JUDGE_ASPECTS", "JudgeCache", "JudgeRequest", "JudgeResult", "JudgeTerm", "ParsedScores",
           "PromptedBackend", "VLMJudge", "parse_scores"]
