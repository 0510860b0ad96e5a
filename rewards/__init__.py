"""Reward terms and their composition for mira-env.

A term scores a batch of :class:`~mira_env.reward_api.RewardInput` and returns one ``float | None`` per
item (:class:`~rewards.base.Scores`, reasons kept). :class:`~rewards.composite.CompositeReward`
weights terms into the env's :class:`~mira_env.reward_api.RewardFunction`; :func:`build_reward` builds
one from a :class:`~rewards.config.RewardConfig`, a dict or a YAML file;
:class:`~rewards.trl_adapter.TRLRewardFunction` plugs any term or composite into TRL's ``reward_funcs``.

Importing this package loads no torch / open_clip / lpips / transformers: the model-backed terms
import them when first used.
"""

from __future__ import annotations

from rewards.base import RewardTerm, Scores, Term
from rewards.composite import MISSING_POLICIES, NORM_STATS, NORMALIZATIONS, CompositeReward
from rewards.config import ClipSettings, JudgeSettings, LpipsSettings, RewardConfig, TermSpec
from rewards.errors import MissingExtraError, RewardConfigError, RewardError
from rewards.registry import TERMS, build_reward, build_terms, register_term
from rewards.trl_adapter import TRLRewardFunction

__all__ = [
    "MISSING_POLICIES", "NORMALIZATIONS", "NORM_STATS", "TERMS", "ClipSettings", "CompositeReward", "JudgeSettings",
    "LpipsSettings", "MissingExtraError", "RewardConfig", "RewardConfigError", "RewardError", "RewardTerm", "Scores",
    "TRLRewardFunction", "Term", "TermSpec", "build_reward", "build_terms", "register_term",
]
