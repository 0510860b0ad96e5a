"""Ranking candidate trajectories with a reward, for ``mira data build`` (:mod:`mira_env.data.build`).

:class:`RewardRanker` wraps any reward: a :class:`~mira_env.rewards.composite.CompositeReward` (for
instance the judge's SC / PQ / overall, or a weighted mix with CLIP and LPIPS), a single term, or any
:class:`~mira_env.reward_api.RewardFunction`. A candidate is scored as a finished episode: source I0,
edited = the candidate's final image, instruction = the session's turns merged in order, trajectory =
the candidate's instructions. All candidates of a session go to the reward in ONE call (judges batch
and cache them). A composite's ``total`` is the score (``None`` with its ``errors["total"]`` as the
reason); a term's value is the score. Terms that are costs (``lpips``, ``l1``, ``l2``) rank lower-is-
better only through a negative weight in a composite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from mira_env.reward_api import RewardInput
from mira_env.tasks.task import Task

from mira_env.rewards.errors import RewardConfigError, describe


class RewardRanker:
    """Scores :class:`~mira_env.data.build.RankItem` lists with ``reward`` (see the module docstring)."""

    def __init__(self, reward: Any, name: str | None = None) -> None:
        if not callable(getattr(reward, "score", None)):
            raise RewardConfigError(f"reward={describe(reward)} has no score(items) method; pass a CompositeReward, "
                                    "a reward term or a RewardFunction")
        self.reward = reward
        self.name = name or repr(reward)

    @staticmethod
    def inputs(items: Sequence[Any]) -> list[RewardInput]:
        out = []
        for item in items:
            task = Task(id=item.session.id, instruction=item.instruction, image=item.source,
                        atomic_instructions=tuple(item.session.instructions))
            out.append(RewardInput(source=item.source, edited=item.final, instruction=item.instruction,
                                   trajectory=item.instructions, task=task, terminated=True,
                                   step=len(item.candidate.steps)))
        return out

    def score(self, items: Sequence[Any]) -> list[tuple[float | None, str | None]]:
        if not items:
            return []
        outputs = self.reward.score(self.inputs(items))
        results = []
        for index, output in enumerate(outputs):
            if hasattr(output, "total"):  # RewardOutput of a composite / RewardFunction
                reason = None if output.total is not None else dict(output.errors).get("total", "unscored")
                results.append((output.total, reason))
            else:  # a term's Scores
                reasons = getattr(outputs, "reasons", None)
                results.append((output, None if output is not None else (reasons[index] if reasons else "unscored")))
        return results


def build_ranker(spec: str) -> RewardRanker:
    """A ranker from ``spec``: a reward YAML file (:mod:`mira_env.rewards.config`) or a comma list of
    ``term[:weight]`` (``"judge_overall"``, ``"clip_dir:1,lpips:-0.5"``) with default term settings."""
    from mira_env.rewards.config import RewardConfig
    from mira_env.rewards.registry import build_reward

    path = Path(spec)
    if path.suffix in (".yaml", ".yml", ".json") or path.is_file():
        return RewardRanker(build_reward(RewardConfig.from_yaml(path)), name=f"reward:{path.name}")
    terms = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        name, _, weight = part.partition(":")
        try:
            terms.append({"name": name, "weight": float(weight) if weight else 1.0})
        except ValueError:
            raise RewardConfigError(f"reward {spec!r}: weight {weight!r} of term {name!r} is not a number") from None
    if not terms:
        raise RewardConfigError(f"reward={spec!r} names no term; give a YAML file or 'term[:weight],...'")
    return RewardRanker(build_reward({"terms": terms}), name=f"reward:{spec}")
