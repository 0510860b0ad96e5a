"""Reward-hacking statistics of a set of episodes (the :class:`~mira_env.episodes.EpisodeRecord` s the rollout engine writes).

A policy can raise a training reward without getting better at the task: by editing nothing when the
reward pays for the source's resemblance to the target, by stopping at once, by emitting instructions
the editor cannot execute. These statistics make that visible next to a metric the reward does not
optimise (here: oracle success, the final scene equals the target):

- ``noop_rate``: fraction of episodes whose final image equals the source I0 pixel for pixel;
- ``edits_per_episode``: mean number of valid edits executed;
- ``first_turn_stop_rate``: fraction of episodes that answered ``<STOP>`` (or ended) at the first turn;
- ``heldout_success``: fraction of scored episodes whose ``success`` is true (``None`` when none is scored).

They live in the agents layer so ``mira eval`` (agents) and the GRPO monitor (``mira_env.train.monitor``)
compute them the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mira_env.episodes import EpisodeRecord
from mira_env.errors import ConfigError


@dataclass(frozen=True)
class EpisodeFacts:
    """What the monitor needs from one episode."""

    edits: int
    first_turn_stop: bool
    noop: bool | None  # None: the episode's images are not available
    success: bool | None  # None: the episode was not scored


@dataclass(frozen=True)
class EpisodeStats:
    """Reward-hacking statistics of a set of episodes (see the module docstring)."""

    episodes: int
    noop_rate: float | None
    edits_per_episode: float
    first_turn_stop_rate: float
    heldout_success: float | None
    heldout_scored: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _image(path: str | Path, run_dir: Path | None) -> np.ndarray:
    from PIL import Image

    full = Path(path)
    if not full.is_absolute() and run_dir is not None:
        full = run_dir / full
    with Image.open(full) as image:
        return np.asarray(image.convert("RGB"))


def episode_facts(record: EpisodeRecord | Mapping[str, Any], run_dir: str | Path | None = None,
                  frames: Sequence[Any] | None = None) -> EpisodeFacts:
    """The facts of one episode record.

    Args:
        record: an :class:`~mira_env.episodes.EpisodeRecord` (or its JSON object, read with
            :meth:`EpisodeRecord.from_dict`).
        run_dir: the folder the record's image paths are relative to (the episode store's folder).
        frames: the episode's frames (source first) when they are in memory; else the record's step images
            (``images`` mode ``steps`` or ``both``) are read. Without either, ``noop`` is ``None``.
    """
    record = EpisodeRecord.coerce(record)
    steps = record.steps
    edits = record.num_edits if record.num_edits is not None else sum(1 for s in steps if not s.stop and s.valid)
    first_turn_stop = not steps or steps[0].stop
    noop: bool | None = None
    if frames is not None and len(frames) > 0:
        noop = bool(np.array_equal(np.asarray(frames[0]), np.asarray(frames[-1])))
    else:
        source = record.images.get("source")
        last = next((s.image for s in reversed(steps) if s.image), None)
        if source is not None:
            root = Path(run_dir) if run_dir is not None else None
            noop = True if last is None else bool(np.array_equal(_image(source, root), _image(last, root)))
    return EpisodeFacts(edits=edits, first_turn_stop=first_turn_stop, noop=noop, success=record.success)


def episode_stats(records: Sequence[EpisodeRecord | Mapping[str, Any] | EpisodeFacts],
                  run_dir: str | Path | None = None) -> EpisodeStats:
    """:class:`EpisodeStats` of ``records`` (episode records, their JSON objects, or :class:`EpisodeFacts`)."""
    facts = [r if isinstance(r, EpisodeFacts) else episode_facts(r, run_dir) for r in records]
    if not facts:
        raise ConfigError("episode_stats needs at least one episode; got none")
    n = len(facts)
    known = [f.noop for f in facts if f.noop is not None]
    scored = [f.success for f in facts if f.success is not None]
    return EpisodeStats(episodes=n, noop_rate=sum(known) / len(known) if known else None,
                        edits_per_episode=sum(f.edits for f in facts) / n,
                        first_turn_stop_rate=sum(f.first_turn_stop for f in facts) / n,
                        heldout_success=sum(scored) / len(scored) if scored else None, heldout_scored=len(scored))


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def stats_line(stats: EpisodeStats, label: str = "episodes") -> str:
    """One log line: ``monitor <label>: no-op 0.10 | edits/episode 1.85 | STOP at turn 1 0.05 | success 0.40 (n=32)``."""
    return (f"monitor {label}: no-op {_fmt(stats.noop_rate)} | edits/episode {stats.edits_per_episode:.2f} | "
            f"STOP at turn 1 {_fmt(stats.first_turn_stop_rate)} | held-out success {_fmt(stats.heldout_success)} "
            f"(n={stats.episodes})")


def monitor_lines(records: Sequence[EpisodeRecord | Mapping[str, Any]], run_dir: str | Path | None = None) -> list[str]:
    """One :func:`stats_line` per agent of ``records`` (what ``mira eval`` prints under its table)."""
    by_agent: dict[str, list[EpisodeRecord]] = {}
    for record in map(EpisodeRecord.coerce, records):
        by_agent.setdefault(record.agent, []).append(record)
    return [stats_line(episode_stats(mine, run_dir), agent) for agent, mine in by_agent.items()]


__all__ = ["EpisodeFacts", "EpisodeStats", "episode_facts", "episode_stats", "monitor_lines", "stats_line"]
