"""Play an agent (or a model, greedily) on chosen tasks of an environment through the rollout engine.

:func:`play_episodes` is the one convenience for "how does this policy do on these tasks": one episode per task
(``group_size=1``), the editor seeds of task ``i`` are ``group_seed(seed, i, 0)`` whatever the policy (every policy
played with the same ``seed`` meets the same editor noise), and it returns the typed records
(:class:`~mira_env.episodes.EpisodeRecord`) in the order of ``task_indices`` with the run folder. The GRPO
monitor, the learning experiment, the baseline tests and ``bench/bench_shapes.py`` use it;
:func:`success_stats` turns shapes-world records into success / oracle-score figures::

    from mira_env.agents.baselines import ScriptedOracleAgent
    from mira_env.agents.play import play_episodes, success_stats
    from mira_env.shapes import make_shapes_env

    env = make_shapes_env(split="test", num_tasks=40)
    records, _ = play_episodes(env, ScriptedOracleAgent())
    print(success_stats(records, env.tasks).as_dict())
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from mira_env.episodes import EpisodeRecord
from mira_env.errors import ConfigError
from mira_env.validate import check_int

from mira_env.agents.rollout import RolloutConfig, agent_name, plan_groups, run_agents
from mira_env.agents.store import EpisodeStore


def play_episodes(env: Any, agent: Any = None, task_indices: Sequence[int] | None = None, *, model: Any = None,
                  processor: Any = None, seed: int = 0, run_dir: str | Path | None = None, name: str | None = None,
                  batch_size: int = 32, max_new_tokens: int = 48, images: str = "steps", keep_images: bool = True
                  ) -> tuple[list[EpisodeRecord], Path | None]:
    """One episode per task of ``task_indices`` (default: every task of ``env``) through the rollout engine.

    Args:
        env: an :class:`~mira_env.env.EditEnv` (or a wrapper of one); its copies play side by side.
        agent: anything with ``act(observations, infos)``; or pass ``model`` and ``processor`` (a VLM, played
            greedily through :meth:`~mira_env.agents.vlm.VLMAgent.from_model`, in eval mode, restored after).
        seed: the rollout seed (editor seeds of task ``i``: ``group_seed(seed, i, 0)``).
        run_dir: the run folder receiving ``episodes.jsonl`` and the images (``images`` mode); ``None`` with
            ``keep_images``: a fresh temporary folder (the no-op statistics read the step images); ``None``
            without ``keep_images``: nothing is written and the folder returned is ``None``.
        name: the agent name in the records (default: the agent's ``name``; ``"policy"`` for a model).
        batch_size: episodes played side by side (and the VLM's generation batch).

    Returns:
        ``(records, folder)``: the records of the episodes played, in the order of ``task_indices``.
    """
    base = getattr(env, "unwrapped", env)
    indices = list(range(len(base.tasks))) if task_indices is None else [int(i) for i in task_indices]
    if not indices:
        raise ConfigError("play_episodes needs at least one task index; got none")
    check_int("batch_size", batch_size)
    if agent is None:
        if model is None or processor is None:
            raise ConfigError("play_episodes needs an agent, or a model and its processor")
        from mira_env.agents.vlm import VLMAgent

        name = name or "policy"
        agent = VLMAgent.from_model(model, processor, name=name, do_sample=False, max_new_tokens=max_new_tokens,
                                    batch_size=batch_size, system_prompt="", edit_budget=base.config.max_steps)
    name = name or agent_name(agent)
    from mira_env.vector import BatchedEditEnv

    config = RolloutConfig(group_size=1, groups_per_batch=min(batch_size, len(indices)), seed=seed, images=images,
                           progress=False)
    folder = Path(run_dir) if run_dir is not None else (
        Path(tempfile.mkdtemp(prefix="mira_play_")) if keep_images else None)
    venv = BatchedEditEnv(config.num_envs, env_fn=lambda: base)
    jobs = plan_groups(venv.tasks, config, indices)
    training = bool(getattr(model, "training", False))
    if model is not None:
        model.eval()
    try:
        if folder is None:
            records = run_agents(venv, {name: agent}, jobs, config)[name]
        else:
            with EpisodeStore(folder) as store:
                records = run_agents(venv, {name: agent}, jobs, config, store)[name]
    finally:
        if model is not None and training:
            model.train()
    order = {index: position for position, index in enumerate(indices)}
    records.sort(key=lambda r: order.get(r.task_index, 0))
    return records, folder


@dataclass
class SuccessStats:
    """Success figures of shapes-world episodes (the env's ``oracle`` reward: final scene against the target)."""

    episodes: int = 0
    successes: int = 0
    score_sum: float = 0.0
    steps_sum: int = 0
    editor_failures: int = 0  # steps whose editor reported ``ok: false`` (an instruction it could not execute)
    per_difficulty: dict = field(default_factory=dict)  # difficulty -> (successes, episodes)

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


def success_stats(records: Sequence[EpisodeRecord], tasks: Any = None) -> SuccessStats:
    """:class:`SuccessStats` of records scored by the shapes world's ``oracle`` reward (the final step's ``oracle``
    and ``success`` components); ``tasks`` (the env's task source) gives each task's difficulty."""
    stats = SuccessStats()
    for record in map(EpisodeRecord.coerce, records):
        components = record.final_components or {}
        if components.get("oracle") is None or record.success is None:
            raise ConfigError(f"episode {record.key} has no oracle score (final components {components}); play "
                              f"a shapes-world env built with reward='oracle'")
        stats.episodes += 1
        stats.successes += int(record.success)
        stats.score_sum += float(components["oracle"])
        stats.steps_sum += len(record.steps)
        stats.editor_failures += sum(1 for s in record.steps
                                     if s.editor_status is not None and not s.editor_status.get("ok", True))
        difficulty = None
        if tasks is not None and record.task_index is not None:
            difficulty = (tasks[record.task_index].metadata or {}).get("difficulty")
        wins, total = stats.per_difficulty.get(difficulty, (0, 0))
        stats.per_difficulty[difficulty] = (wins + int(record.success), total + 1)
    return stats


__all__ = ["SuccessStats", "play_episodes", "success_stats"]
