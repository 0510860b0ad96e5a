"""The run folder the rollout engine writes: ``episodes.jsonl`` (typed :class:`~mira_env.episodes.EpisodeRecord` lines)
plus PNG images, append-only, safe to resume after a kill.

    episodes.jsonl                      one JSON line per finished episode (:class:`~mira_env.episodes.EpisodeRecord`)
    images/<agent>/<task>/g<g>_m<m>/    step_00.png (the source), step_01.png, ... (observation size)
    strips/<agent>/<task>_g<g>_m<m>.png the whole episode as one strip (source, then every step)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from mira_env.episodes import (EPISODES_FILE, EpisodeKey, EpisodeRecord, EpisodeRecordError, episodes_path,
                               to_jsonable)
from mira_env.errors import MiraError
from mira_env.runs import slug


class RolloutError(MiraError, RuntimeError):
    """A rollout cannot continue: a misbehaving agent, a corrupt run folder, an impossible batch."""


def episode_key(record: EpisodeRecord | Mapping[str, Any]) -> EpisodeKey:
    """``(agent, task id, group index, member index)`` of an episode record (typed, or its JSON object)."""
    if isinstance(record, EpisodeRecord):
        return record.key
    return (str(record["agent"]), str(record["task_id"]), int(record["group_index"]), int(record["member_index"]))


class EpisodeStore:
    """A run folder: ``episodes.jsonl`` plus PNG images, append-only, safe to resume after a kill.

    Opening a store takes the folder's lock (:class:`mira_env.runs.RunLock`: a second process on the
    same folder is refused; :meth:`close` or the end of the process releases it) and reads the finished
    episodes (:meth:`EpisodeRecord.from_json`, any schema version); a last line without its newline (a
    process killed mid-write) is cut off the file. Any other unreadable line raises :class:`RolloutError`
    naming ``file:line`` and the bad key. Records are redacted (:func:`mira_env.redact.redact_obj`) before
    they are written; image paths stay inside the folder.
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        from mira_env.runs import RunLock

        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.lock = RunLock(self.run_dir).acquire()
        self.path = episodes_path(self.run_dir)
        self._records: dict[EpisodeKey, EpisodeRecord] = {}
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
                record = EpisodeRecord.from_json(line, f"{self.path}:{number}")
            except EpisodeRecordError as exc:
                raise RolloutError(f"{exc} to resume (or move the file away)") from exc
            self._records.setdefault(record.key, record)

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, key: EpisodeKey) -> bool:
        return key in self._records

    def records(self) -> list[EpisodeRecord]:
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

    def write(self, record: EpisodeRecord | Mapping[str, Any]) -> EpisodeRecord:
        """Append one finished episode (images must already be written; a mapping is read with
        :meth:`EpisodeRecord.from_dict`). Duplicates raise. Returns the typed record."""
        import json

        from mira_env.redact import redact_obj

        record = EpisodeRecord.coerce(record)
        if record.key in self._records:
            raise RolloutError(f"episode {record.key} is already in {self.path}; it would be written twice")
        line = json.dumps(redact_obj(to_jsonable(record.to_dict())), ensure_ascii=True) + "\n"
        with self.path.open("ab") as handle:
            handle.write(line.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        self._records[record.key] = record
        return record


__all__ = ["EPISODES_FILE", "EpisodeStore", "RolloutError", "episode_key", "to_jsonable"]
