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

The run folder (:class:`EpisodeStore`)::

    episodes.jsonl                      one JSON line per finished episode (see ``EpisodeResult``)
    images/<agent>/<task>/g<g>_m<m>/    step_00.png (the source), step_01.png, ... (observation size)
    strips/<agent>/<task>_g<g>_m<m>.png the whole episode as one strip (source, then every step)

Images are written before the episode's line; the line is appended, flushed and fsynced in one
write. An interrupted run restarts with the same store: episodes are keyed
``(agent, task id, group index, member index)``, finished ones are skipped, a torn last line (a kill
mid-write) is cut off, and only the missing members of a group are played again (with the group's
seed, so they are the episodes the first run would have played).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from mira_env.errors import ConfigError, MiraError, describe
from mira_env.runs import slug
from mira_env.tasks.images import image_strip
from mira_env.tasks.task import Task, TaskSource

EPISODES_FILE = "episodes.jsonl"
IMAGE_MODES = ("steps", "strip", "both", "none")
_SEED_LIMIT = 2**31 - 1


class RolloutError(MiraError, RuntimeError):
    """A rollout cannot continue: a misbehaving agent, a corrupt run folder, an impossible batch."""


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
        for name in ("group_size", "groups_per_batch", "groups_per_task"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}={describe(value)} must be a positive int")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed={describe(self.seed)} must be a non-negative int")
        if self.images not in IMAGE_MODES:
            raise ConfigError(f"images={describe(self.images)} is not one of: "
                              f"{', '.join(repr(m) for m in IMAGE_MODES)}")

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


EpisodeKey = tuple[str, str, int, int]


def episode_key(record: Mapping[str, Any]) -> EpisodeKey:
    """``(agent, task id, group index, member index)`` of an episode record."""
    return (str(record["agent"]), str(record["task_id"]), int(record["group_index"]), int(record["member_index"]))


def to_jsonable(value: Any) -> Any:
    """Numpy scalars / arrays, tuples, sets and dataclass-like objects as plain JSON values."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    return str(value)


class EpisodeStore:
    """A run folder: ``episodes.jsonl`` plus PNG images, append-only, safe to resume after a kill.

    Opening a store takes the folder's lock (:class:`mira_env.runs.RunLock`: a second process on the
    same folder is refused; :meth:`close` or the end of the process releases it) and reads the finished
    episodes; a last line without its newline (a process killed mid-write) is cut off the file. Any
    other unreadable line raises :class:`RolloutError` naming it. Records are redacted
    (:func:`mira_env.redact.redact_obj`) before they are written; image paths stay inside the folder.
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        from mira_env.runs import RunLock

        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.lock = RunLock(self.run_dir).acquire()
        self.path = self.run_dir / EPISODES_FILE
        self._records: dict[EpisodeKey, dict] = {}
        self.torn_lines = 0
        try:
            self._load()
        except BaseException:
            self.lock.release()
            raise

    def close(self) -> None:
        """Release the folder's lock (the records stay readable)."""
        self.lock.release()

    def __enter__(self) -> "EpisodeStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # torn last line: cut it off so the next append starts a clean line
            self.torn_lines = 1
            with self.path.open("r+b") as handle:
                handle.truncate(end)
                handle.flush()
                os.fsync(handle.fileno())
        for number, line in enumerate(data[:end].split(b"\n")[:-1], start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                key = episode_key(record)
            except (ValueError, KeyError, TypeError) as exc:
                raise RolloutError(f"{self.path}:{number} is not an episode record ({exc}); move the file away "
                                   f"or delete that line to resume") from exc
            self._records.setdefault(key, record)

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, key: EpisodeKey) -> bool:
        return key in self._records

    def records(self) -> list[dict]:
        """Every finished episode, in the order written."""
        return list(self._records.values())

    def done_members(self, agent: str, task_id: str, group_index: int) -> set[int]:
        return {key[3] for key in self._records if key[:3] == (agent, task_id, group_index)}

    def image_dir(self, agent: str, task_id: str, group_index: int, member_index: int) -> Path:
        return Path("images") / slug(agent) / slug(task_id) / f"g{group_index}_m{member_index}"

    def strip_path(self, agent: str, task_id: str, group_index: int, member_index: int) -> Path:
        return Path("strips") / slug(agent) / f"{slug(task_id)}_g{group_index}_m{member_index}.png"

    def save_image(self, relative: Path, array: np.ndarray) -> str:
        """Write ``array`` as PNG at ``run_dir/relative`` atomically (a uniquely named temp file, then a
        rename); ``relative`` must stay inside the folder. Returns the relative path."""
        from mira_env.runs import inside, save_image

        save_image(inside(self.run_dir, relative, "image path"), np.asarray(array, dtype=np.uint8))
        return Path(relative).as_posix()

    def write(self, record: dict) -> None:
        """Append one finished episode (images must already be written). Duplicates raise."""
        key = episode_key(record)
        if key in self._records:
            raise RolloutError(f"episode {key} is already in {self.path}; it would be written twice")
        from mira_env.redact import redact_obj

        line = json.dumps(redact_obj(to_jsonable(record)), ensure_ascii=True) + "\n"
        with self.path.open("ab") as handle:
            handle.write(line.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        self._records[key] = record


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
    steps: list[dict] = field(default_factory=list)
    total_return: float = 0.0


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
    def run(self, jobs: Iterable[GroupJob], progress: Any = None) -> list[dict]:
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
        finished: list[dict] = []
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

    def _turn(self, running: dict[int, _Running], free: deque) -> list[dict]:
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
            episode.steps.append({
                "t": int(info["step"]), "action": action, "raw_output": raw,
                "parse_error": parse_error, "instruction": info["instruction"],
                "valid": bool(info["valid_action"]), "invalid_reason": info["invalid_reason"],
                "stop": bool(info["stop"]), "reward": float(reward), "reward_total": info.get("reward_total"),
                "reward_components": info.get("reward_components"), "reward_errors": info.get("reward_errors"),
                "editor_seed": info.get("editor_seed"), "editor_status": info.get("editor_status"),
                "editor_error": info.get("editor_error"),
                "timings": {"agent_s": agent_s / len(slots), "agent_batch": len(slots),
                            "editor_s": getattr(timings, "editor_s", None),
                            "reward_s": getattr(timings, "reward_s", None)},
            })
            if terminated or truncated:
                done.append(self._finish(episode, bool(terminated), bool(truncated)))
                del running[slot]
                free.append(slot)
        return done

    def _finish(self, episode: _Running, terminated: bool, truncated: bool) -> dict:
        job, member = episode.job, episode.member
        images: dict[str, Any] = {}
        if self.store is not None and self.config.images in ("steps", "both"):
            folder = self.store.image_dir(self.name, job.task.id, job.group_index, member)
            paths = [self.store.save_image(folder / f"step_{i:02d}.png", frame) for i, frame in enumerate(episode.frames)]
            images["source"] = paths[0]
            for step, path in zip(episode.steps, paths[1:]):
                step["image"] = path
        if self.store is not None and self.config.images in ("strip", "both"):
            images["strip"] = self.store.save_image(
                self.store.strip_path(self.name, job.task.id, job.group_index, member), image_strip(episode.frames))
        last = episode.steps[-1] if episode.steps else {}
        components = last.get("reward_components")
        record = {
            "agent": self.name, "task_id": job.task.id, "task_index": job.task_index,
            "group_index": job.group_index, "member_index": member, "group_seed": job.seed,
            "editor_seed": episode.editor_seed, "instruction": job.task.instruction,
            "steps": episode.steps, "num_steps": len(episode.steps),
            "num_edits": sum(1 for s in episode.steps if not s["stop"] and s["valid"]),
            "terminated": terminated, "truncated": truncated, "return": episode.total_return,
            "final_reward": last.get("reward_total"), "final_components": components,
            "success": _success(components), "images": images,
            "wall_s": time.perf_counter() - episode.started,
        }
        if self.store is not None:
            self.store.write(record)
        return record


def run_agents(venv: Any, agents: Mapping[str, Any], jobs: Sequence[GroupJob], config: RolloutConfig,
               store: EpisodeStore | None = None, desc: str = "episodes") -> dict[str, list[dict]]:
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


__all__ = ["EPISODES_FILE", "IMAGE_MODES", "EpisodeStore", "GroupJob", "RolloutConfig", "RolloutEngine",
           "RolloutError", "agent_name", "episode_key", "group_seed", "plan_groups", "run_agents", "slug",
           "to_jsonable"]
