"""Grouped, batched rollouts through :class:`~mira_env.vector.BatchedEditEnv`, written as they finish.

A *group* is ``G`` episodes of one task with one group seed (so the same task and the same editor
seeds, :meth:`BatchedEditEnv.reset_group`): the unit GRPO normalises rewards over. Several groups
share one batch of ``num_envs = groups_per_batch * G`` environments. Every turn:

- ONE ``agent.act`` call produces the next instruction of every running episode;
- ONE ``BatchedEditEnv.step_active`` call executes all of them (one editor call, one reward call);
- finished episodes leave the batch at once (the others keep going) and are written to the run
  folder; as soon as enough slots are free the next group starts in them.

Agents therefore see a changing subset of episodes from call to call: the position of an episode in
``act``'s lists changes when others finish. Everything an episode needs is in its observation
(``history``, ``step``) and info; an agent that keeps per-episode memory keys it on
``infos[i]["episode_id"]`` (``"<agent>|<task id>|g<group>|m<member>"``, added by the engine).

Every finished episode is an :class:`~mira_env.episodes.EpisodeRecord` (its steps :class:`~mira_env.episodes.StepRecord`),
written to the run folder (:class:`~mira_env.agents.store.EpisodeStore`: ``episodes.jsonl``, ``images/``, ``strips/``).
Images are written before the episode's line; the line is appended, flushed and fsynced in one
write. An interrupted run restarts with the same store: episodes are keyed
``(agent, task id, group index, member index)``, finished ones are skipped, a torn last line (a kill
mid-write) is cut off, and only the missing members of a group are played again (with the group's
seed, so they are the episodes the first run would have played).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from mira_env.episodes import EPISODES_FILE, EpisodeRecord, StepRecord, to_jsonable
from mira_env.errors import ConfigError, describe
from mira_env.runs import slug
from mira_env.tasks.images import image_strip
from mira_env.tasks.task import Task, TaskSource
from mira_env.validate import check_choice, check_int, check_ints

from mira_env.agents.store import EpisodeStore, RolloutError, episode_key

IMAGE_MODES = ("steps", "strip", "both", "none")
_SEED_LIMIT = 2**31 - 1


@dataclass
class RolloutConfig:
    """How episodes are grouped, batched, seeded and saved."""

    group_size: int = field(default=4, metadata={
        "help": "G: episodes per group; a group shares its task and its editor seeds (GRPO group)."})
    groups_per_batch: int = field(default=1, metadata={
        "help": "Groups played side by side; the batch holds groups_per_batch * group_size environments."})
    groups_per_task: int = field(default=1, metadata={
        "help": "Groups played per task (each with its own group seed)."})
    seed: int = field(default=0, metadata={
        "help": "Base seed; group g of task index i gets the seed SeedSequence([seed, i, g])."})
    images: str = field(default="both", metadata={
        "help": "Images written per episode: 'steps' (one PNG per step), 'strip' (one PNG per episode), "
                "'both' or 'none'."})
    progress: bool = field(default=True, metadata={"help": "Show a tqdm progress bar over episodes."})

    def __post_init__(self) -> None:
        check_ints(self, ("group_size", "groups_per_batch", "groups_per_task"))
        check_int("seed", self.seed, minimum=0)
        check_choice("images", self.images, IMAGE_MODES)

    @property
    def num_envs(self) -> int:
        """Size of the batched environment the engine needs."""
        return self.group_size * self.groups_per_batch


def group_seed(base_seed: int, task_index: int, group_index: int) -> int:
    """The seed of group ``group_index`` of the task at ``task_index`` (the same for every agent)."""
    state = np.random.SeedSequence([int(base_seed), int(task_index), int(group_index)]).generate_state(1)
    return int(state[0]) % _SEED_LIMIT


@dataclass(frozen=True)
class GroupJob:
    """One group to play: its task, its seed and the members still to play."""

    task: Task
    task_index: int
    group_index: int
    seed: int
    members: tuple[int, ...]


def plan_groups(tasks: TaskSource, config: RolloutConfig, task_indices: Sequence[int] | None = None) -> list[GroupJob]:
    """Every group of every selected task (default: all tasks), all members to play."""
    indices = range(len(tasks)) if task_indices is None else task_indices
    jobs = []
    for task_index in indices:
        if isinstance(task_index, bool) or not isinstance(task_index, (int, np.integer)) \
                or not 0 <= int(task_index) < len(tasks):
            raise ConfigError(f"task index {describe(task_index)} is out of range for {len(tasks)} tasks")
        task = tasks[int(task_index)]
        for group_index in range(config.groups_per_task):
            jobs.append(GroupJob(task, int(task_index), group_index,
                                 group_seed(config.seed, int(task_index), group_index),
                                 tuple(range(config.group_size))))
    return jobs


def _unbatch_info(vector_info: Mapping[str, Any], index: int) -> dict:
    """One environment's info out of a vector-env info dict (``_key`` masks, nested dicts)."""
    out = {}
    for key, value in vector_info.items():
        if key.startswith("_"):
            continue
        mask = vector_info.get(f"_{key}")
        if mask is not None and not bool(mask[index]):
            continue
        out[key] = _unbatch_info(value, index) if isinstance(value, dict) else value[index]
    return out


def _unbatch_obs(observations: Mapping[str, Any], index: int) -> dict:
    return {key: value[index] for key, value in observations.items()}


@dataclass
class _Running:
    """An episode in a batch slot."""

    job: GroupJob
    member: int
    observation: dict
    info: dict
    started: float
    frames: list[np.ndarray]
    editor_seed: int | None = None
    steps: list[StepRecord] = field(default_factory=list)
    total_return: float = 0.0


def _number(value: Any) -> float | None:
    return None if value is None else to_jsonable(float(value))


def _integer(value: Any) -> int | None:
    return None if value is None else int(value)


def _success(components: Mapping[str, Any] | None) -> bool | None:
    value = (components or {}).get("success")
    if value is None:
        return None
    return bool(float(value) >= 0.5)


def agent_name(agent: Any) -> str:
    """The agent's ``name`` attribute, or its class name."""
    name = getattr(agent, "name", None)
    return str(name) if name else type(agent).__name__


class RolloutEngine:
    """Plays :class:`GroupJob` s for one agent through one :class:`BatchedEditEnv`.

    Args:
        venv: the batched environment; it needs at least ``config.group_size`` environments.
        agent: an :class:`~mira_env.agents.base.Agent`; if it has ``last_outputs`` (one raw text, or an object
            with ``text`` / ``error`` such as :class:`~mira_env.agents.prompt.ParsedAction`, per observation of
            the last ``act`` call) they are recorded as each step's ``raw_output`` / ``parse_error``.
        config: grouping, seeding and image options.
        store: where finished episodes go (``None``: kept in memory only).
        name: the agent name in the records (default: ``agent.name``).
    """

    def __init__(self, venv: Any, agent: Any, config: RolloutConfig | None = None,
                 store: EpisodeStore | None = None, name: str | None = None) -> None:
        self.venv = venv
        self.agent = agent
        self.config = config or RolloutConfig()
        self.store = store
        self.name = name or agent_name(agent)
        if not callable(getattr(agent, "act", None)):
            raise ConfigError(f"agent={describe(agent)} has no act(observations, infos) method")
        if venv.num_envs < self.config.group_size:
            raise ConfigError(f"the batched env has {venv.num_envs} envs but group_size={self.config.group_size}; "
                              f"build it with num_envs >= group_size (RolloutConfig.num_envs = "
                              f"{self.config.num_envs})")
        self.act_calls = 0
        self.act_batch_sizes: list[int] = []

    # ------------------------------------------------------------------ planning
    def pending(self, jobs: Iterable[GroupJob]) -> list[GroupJob]:
        """``jobs`` without the members already in the store."""
        if self.store is None:
            return list(jobs)
        out = []
        for job in jobs:
            done = self.store.done_members(self.name, job.task.id, job.group_index)
            members = tuple(m for m in job.members if m not in done)
            if members:
                out.append(GroupJob(job.task, job.task_index, job.group_index, job.seed, members))
        return out

    # ------------------------------------------------------------------ the loop
    def run(self, jobs: Iterable[GroupJob], progress: Any = None) -> list[EpisodeRecord]:
        """Play every pending member of ``jobs``; returns the records of the episodes played now.

        ``progress``: an object with ``update(n)`` (a shared tqdm bar); by default the engine makes
        its own bar when ``config.progress`` is set.
        """
        queue = deque(self.pending(jobs))
        total = sum(len(job.members) for job in queue)
        own_bar = None
        if progress is None and self.config.progress and total:
            from tqdm.auto import tqdm

            progress = own_bar = tqdm(total=total, desc=f"rollouts {self.name}", unit="episode")
        reset = getattr(self.agent, "reset", None)
        if callable(reset):
            reset(self.venv.num_envs)
        free = deque(range(self.venv.num_envs))
        running: dict[int, _Running] = {}
        finished: list[EpisodeRecord] = []
        try:
            while queue or running:
                while queue and len(free) >= len(queue[0].members):
                    self._start(queue.popleft(), free, running)
                if not running:  # cannot happen: num_envs >= group_size is checked
                    raise RolloutError(f"group of {len(queue[0].members)} members does not fit {len(free)} free slots")
                for record in self._turn(running, free):
                    finished.append(record)
                    if progress is not None:
                        progress.update(1)
        finally:
            if own_bar is not None:
                own_bar.close()
        return finished

    def _start(self, job: GroupJob, free: deque, running: dict[int, _Running]) -> None:
        slots = [free.popleft() for _ in job.members]
        observations, infos = self.venv.reset_group(job.task, seed=job.seed, indices=slots)
        now = time.perf_counter()
        for slot, member in zip(slots, job.members):
            observation = _unbatch_obs(observations, slot)
            info = _unbatch_info(infos, slot)
            info["episode_id"] = self._episode_id(job, member)
            running[slot] = _Running(job, member, observation, info, now, [np.asarray(observation["current"])],
                                     editor_seed=info.get("editor_seed"))

    def _episode_id(self, job: GroupJob, member: int) -> str:
        return f"{self.name}|{job.task.id}|g{job.group_index}|m{member}"

    def _turn(self, running: dict[int, _Running], free: deque) -> list[EpisodeRecord]:
        slots = sorted(running)
        episodes = [running[s] for s in slots]
        start = time.perf_counter()
        actions = self.agent.act([e.observation for e in episodes], [e.info for e in episodes])
        agent_s = time.perf_counter() - start
        self.act_calls += 1
        self.act_batch_sizes.append(len(slots))
        if not isinstance(actions, (list, tuple)) or len(actions) != len(slots):
            count = len(actions) if isinstance(actions, (list, tuple)) else describe(actions)
            raise RolloutError(f"agent {self.name!r} returned {count} actions for {len(slots)} observations; "
                               f"act() must return one action per observation")
        raw_outputs = getattr(self.agent, "last_outputs", None)
        if not isinstance(raw_outputs, (list, tuple)) or len(raw_outputs) != len(slots):
            raw_outputs = [None] * len(slots)
        parse_errors = [getattr(raw, "error", None) for raw in raw_outputs]
        raw_outputs = [raw if raw is None or isinstance(raw, str) else getattr(raw, "text", str(raw))
                       for raw in raw_outputs]
        results = self.venv.step_active(slots, list(actions))
        done = []
        for slot, episode, action, raw, parse_error, result in zip(slots, episodes, actions, raw_outputs,
                                                                   parse_errors, results):
            observation, reward, terminated, truncated, info = result
            info["episode_id"] = episode.info["episode_id"]
            episode.observation, episode.info = observation, info
            episode.frames.append(np.asarray(observation["current"]))
            episode.total_return += float(reward)
            timings = info.get("timings")
            episode.steps.append(StepRecord(
                t=int(info["step"]), action=to_jsonable(action), raw_output=raw, parse_error=parse_error,
                instruction=info["instruction"], valid=bool(info["valid_action"]),
                invalid_reason=info["invalid_reason"], stop=bool(info["stop"]), reward=float(reward),
                reward_total=_number(info.get("reward_total")),
                reward_components=to_jsonable(info.get("reward_components")),
                reward_errors=to_jsonable(info.get("reward_errors")), editor_seed=_integer(info.get("editor_seed")),
                editor_status=to_jsonable(info.get("editor_status")), editor_error=to_jsonable(info.get("editor_error")),
                timings={"agent_s": agent_s / len(slots), "agent_batch": len(slots),
                         "editor_s": getattr(timings, "editor_s", None), "reward_s": getattr(timings, "reward_s", None)},
            ))
            if terminated or truncated:
                done.append(self._finish(episode, bool(terminated), bool(truncated)))
                del running[slot]
                free.append(slot)
        return done

    def _finish(self, episode: _Running, terminated: bool, truncated: bool) -> EpisodeRecord:
        job, member = episode.job, episode.member
        images: dict[str, Any] = {}
        if self.store is not None and self.config.images in ("steps", "both"):
            folder = self.store.image_dir(self.name, job.task.id, job.group_index, member)
            paths = [self.store.save_image(folder / f"step_{i:02d}.png", frame) for i, frame in enumerate(episode.frames)]
            images["source"] = paths[0]
            for step, path in zip(episode.steps, paths[1:]):
                step.image = path
        if self.store is not None and self.config.images in ("strip", "both"):
            images["strip"] = self.store.save_image(
                self.store.strip_path(self.name, job.task.id, job.group_index, member), image_strip(episode.frames))
        last = episode.steps[-1] if episode.steps else None
        components = last.reward_components if last is not None else None
        record = EpisodeRecord(
            agent=self.name, task_id=job.task.id, task_index=job.task_index, group_index=job.group_index,
            member_index=member, group_seed=job.seed, editor_seed=_integer(episode.editor_seed),
            instruction=job.task.instruction, steps=episode.steps, num_steps=len(episode.steps),
            num_edits=sum(1 for s in episode.steps if not s.stop and s.valid), terminated=terminated,
            truncated=truncated, total_return=episode.total_return,
            final_reward=last.reward_total if last is not None else None, final_components=components,
            success=_success(components), images=images, wall_s=time.perf_counter() - episode.started)
        if self.store is not None:
            self.store.write(record)
        return record


def run_agents(venv: Any, agents: Mapping[str, Any], jobs: Sequence[GroupJob], config: RolloutConfig,
               store: EpisodeStore | None = None, desc: str = "episodes") -> dict[str, list[EpisodeRecord]]:
    """Play ``jobs`` for every agent in turn (one shared tqdm bar); returns the new records per agent."""
    engines = {name: RolloutEngine(venv, agent, config, store, name) for name, agent in agents.items()}
    total = sum(len(job.members) for engine in engines.values() for job in engine.pending(jobs))
    bar = None
    if config.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=desc, unit="episode")
    try:
        return {name: engine.run(jobs, progress=bar if bar is not None else _NoProgress()) for name, engine in engines.items()}
    finally:
        if bar is not None:
            bar.close()


class _NoProgress:
    def update(self, n: int = 1) -> None:
        return None


__all__ = ["EPISODES_FILE", "IMAGE_MODES", "EpisodeRecord", "EpisodeStore", "GroupJob", "RolloutConfig", "RolloutEngine",
           "RolloutError", "StepRecord", "agent_name", "episode_key", "group_seed", "plan_groups", "run_agents",
           "slug", "to_jsonable"]
