"""Reward terms and their composition for mira-env.

A term scores a batch of :class:`~mira_env.reward_api.RewardInput` and returns one ``float | None`` per
item (:class:`~mira_env.rewards.base.Scores`, reasons kept). :class:`~mira_env.rewards.composite.CompositeReward`
weights terms into the env's :class:`~mira_env.reward_api.RewardFunction`; :func:`build_reward` builds
one from a :class:`~mira_env.rewards.config.RewardConfig`, a dict or a YAML file;
:class:`~mira_env.rewards.trl_adapter.TRLRewardFunction` plugs any term or composite into TRL's ``reward_funcs``.

Importing this package loads no torch / open_clip / lpips / transformers: the model-backed terms
import them when first used.
"""

from __future__ import annotations

if __name__ != "mira_env.rewards":  # the repository folder reached under its bare name (cwd on sys.path)
    raise ImportError(f"this folder is the package mira_env.rewards of mira-env, imported as {__name__!r}; "
                      "import mira_env.rewards (pip install -e . from the repository root)")

from mira_env.rewards.base import RewardTerm, Scores, Term
from mira_env.rewards.composite import MISSING_POLICIES, NORM_STATS, NORMALIZATIONS, CompositeReward
from mira_env.rewards.config import ClipSettings, JudgeSettings, LpipsSettings, RewardConfig, TermSpec
from mira_env.rewards.errors import MissingExtraError, RewardConfigError, RewardError
from mira_env.rewards.registry import TERMS, build_reward, build_terms, register_term
from mira_env.rewards.trl_adapter import TRLRewardFunction

__all__ = [
    "MISSING_POLICIES", "NORMALIZATIONS", "NORM_STATS", "TERMS", "ClipSettings", "CompositeReward", "JudgeSettings",
    "LpipsSettings", "MissingExtraError", "RewardConfig", "RewardConfigError", "RewardError", "RewardTerm", "Scores",
    "TRLRewardFunction", "Term", "TermSpec", "build_reward", "build_terms", "register_term",
]
