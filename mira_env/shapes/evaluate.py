"""A plain episode loop to measure agents in the shapes world (success rate, oracle score, steps).

``agent`` is any object with ``act(observations, infos) -> list[str]`` (and optionally ``reset(n)``);
nothing here imports the ``agents`` package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mira_env.env import EditEnv
from mira_env.shapes.oracle import oracle_score


@dataclass
class EpisodeStats:
    """Aggregate figures of a batch of episodes."""

    episodes: int = 0
    successes: int = 0
    score_sum: float = 0.0
    steps_sum: int = 0
    editor_failures: int = 0
    per_difficulty: dict = field(default_factory=dict)

    @property
    def success_rate(self) -> float:
        return self.successes / self.episodes if self.episodes else 0.0

    @property
    def mean_score(self) -> float:
        return self.score_sum / self.episodes if self.episodes else 0.0

    @property
    def mean_steps(self) -> float:
        return self.steps_sum / self.episodes if self.episodes else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"episodes": self.episodes, "success_rate": self.success_rate, "mean_score": self.mean_score,
                "mean_steps": self.mean_steps, "editor_failures": self.editor_failures,
                "success_by_difficulty": {d: s / n for d, (s, n) in sorted(self.per_difficulty.items())}}


def play_episodes(env: EditEnv, agent: Any, num_episodes: int | None = None, seed: int = 0) -> EpisodeStats:
    """Play task 0..num_episodes-1 of ``env.tasks`` once each (editor seeds from ``seed``); the oracle
    score and success are computed on the final scene against ``task.metadata["target_scene"]``."""
    env = env.unwrapped
    count = len(env.tasks) if num_episodes is None else min(num_episodes, len(env.tasks))
    stats = EpisodeStats()
    for index in range(count):
        if hasattr(agent, "reset"):
            agent.reset(1)
        obs, info = env.reset(seed=seed + index, options={"task": index})
        done = False
        while not done:
            (action,) = agent.act([obs], [info])
            obs, _, terminated, truncated, info = env.step(action)
            status = info.get("editor_status")
            if status is not None and not status.get("ok", True):
                stats.editor_failures += 1
            done = terminated or truncated
        score, success = oracle_score(info["state"], info["task"].metadata["target_scene"])
        stats.episodes += 1
        stats.successes += int(success)
        stats.score_sum += score
        stats.steps_sum += info["step"]
        difficulty = info["task"].metadata.get("difficulty")
        done_count, total = stats.per_difficulty.get(difficulty, (0, 0))
        stats.per_difficulty[difficulty] = (done_count + int(success), total + 1)
    return stats
