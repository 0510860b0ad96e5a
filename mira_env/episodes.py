"""Typed episode records: one line of a run folder's ``episodes.jsonl``, and its steps.

:class:`~mira_env.agents.rollout.RolloutEngine` writes one :class:`EpisodeRecord` per finished episode; the
report, the statistics and the monitor read them back with :func:`load_episodes`. The JSON keys are the
attribute names, except ``return`` (a Python keyword) which is :attr:`EpisodeRecord.total_return`.

Versions: a line without ``schema_version`` was written before the field existed (version 1, the same keys;
lines older still lack a step's ``parse_error``, which reads as ``None``). Keys a version does not know are kept
in ``extra`` and written back unchanged. A line from a newer version is refused with the fix (upgrade mira-env).
Malformed lines raise :class:`EpisodeRecordError` naming ``file:line`` and the bad key.
"""

from __future__ import annotations

import functools
import json
import math
import os
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Iterator, Mapping

import numpy as np

from mira_env.errors import ConfigError, describe

#: the version :meth:`EpisodeRecord.to_dict` writes; a line without ``schema_version`` is version 1
SCHEMA_VERSION = 2
EPISODES_FILE = "episodes.jsonl"

EpisodeKey = tuple[str, str, int, int]


class EpisodeRecordError(ConfigError):
    """An ``episodes.jsonl`` line (or a record mapping) that is not an episode record."""


def to_jsonable(value: Any) -> Any:
    """Numpy scalars / arrays, tuples, sets, records and other objects as plain JSON values (NaN / inf: None)."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (EpisodeRecord, StepRecord)):
        return to_jsonable(value.to_dict())
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    return str(value)


# ---------------------------------------------------------------------- checking one field
def _error(where: str, message: str) -> EpisodeRecordError:
    """``message`` about the line at ``where`` (``file:line``, or empty for a bare mapping)."""
    return EpisodeRecordError(f"{where}: {message}" if where else message)


def _bad(where: str, key: str, value: Any, wanted: str) -> EpisodeRecordError:
    return _error(where, f"key {key!r} = {describe(value)} must be {wanted}; fix or delete that line")


def _missing(where: str, key: str, data: Mapping, what: str) -> EpisodeRecordError:
    known = ", ".join(sorted(map(str, data))) or "none"
    return _error(where, f"not {what}: key {key!r} is missing (keys: {known}); fix or delete that line")


def _check(where: str, key: str, value: Any, kind: str, optional: bool) -> Any:
    """``value`` of ``key`` as ``kind`` (``str``, ``int``, ``float``, ``bool``, ``dict``, ``any``)."""
    if value is None:
        if optional or kind == "any":
            return None
        raise _bad(where, key, value, f"a {kind} (it may not be null)")
    if kind == "any":
        return value
    if kind == "bool":
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        raise _bad(where, key, value, "true or false")
    if kind == "int":
        if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            return int(value)
        raise _bad(where, key, value, "an int")
    if kind == "float":
        if isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_)):
            return float(value)
        raise _bad(where, key, value, "a number")
    if kind == "str":
        if isinstance(value, str):
            return value
        raise _bad(where, key, value, "a string")
    if kind == "dict":
        if isinstance(value, Mapping):
            return dict(value)
        raise _bad(where, key, value, "an object")
    raise AssertionError(kind)


def _read(cls: type, data: Any, where: str, what: str) -> dict[str, Any]:
    """The constructor arguments of ``cls`` (its :func:`_field_spec`) out of ``data``; unknown keys go to ``extra``."""
    if not isinstance(data, Mapping):
        raise _error(where, f"{describe(data)} is not {what} (a JSON object)")
    values: dict[str, Any] = {}
    for name, (key, kind, required) in _field_spec(cls).items():
        if key not in data:
            if required:
                raise _missing(where, key, data, what)
            continue
        values[name] = _check(where, key, data[key], kind, optional=not required)
    keys = {key for key, _, _ in _field_spec(cls).values()}
    values["extra"] = {str(k): v for k, v in data.items() if k not in keys and k not in cls._READ_ONLY}
    return values


#: field metadata of a str field read as any JSON value (older lines hold other types there)
LENIENT = {"kind": "any"}
_KINDS = {"int": "int", "bool": "bool", "float": "float", "str": "str", "Any": "any"}


@functools.cache
def _field_spec(cls: type) -> dict[str, tuple[str, str, bool]]:
    """``{attribute: (JSON key, kind, required)}`` of a record dataclass, in field order, from its fields: the key
    is ``metadata["key"]`` or the name, the kind ``metadata["kind"]`` or the annotation without ``| None``,
    required = no default. ``extra`` and the class's ``_READ_ONLY`` fields are left to the class."""
    spec = {}
    for f in fields(cls):
        if f.name == "extra" or f.name in cls._READ_ONLY:
            continue
        kind = f.metadata.get("kind")
        if kind is None:
            base = str(f.type).replace("| None", "").strip()
            kind = "dict" if base.startswith("dict") else _KINDS[base]
        required = f.default is MISSING and f.default_factory is MISSING
        spec[f.name] = (f.metadata.get("key", f.name), kind, required)
    return spec


class _KeyAccess:
    """Read-only ``record["key"]`` / ``record.get("key")`` by JSON key, for code not yet converted to attributes.

    Transitional: new code reads attributes (``record.success``, ``step.reward_errors``)."""

    _READ_ONLY: ClassVar[tuple[str, ...]] = ()

    def _attribute(self, key: str) -> str | None:
        for name, (json_key, _, _) in _field_spec(type(self)).items():
            if json_key == key:
                return name
        return None

    def __getitem__(self, key: str) -> Any:
        name = self._attribute(key)
        if name is not None:
            return getattr(self, name)
        if key in self._READ_ONLY:
            return getattr(self, key)
        if key in self.extra:  # type: ignore[attr-defined]
            return self.extra[key]  # type: ignore[attr-defined]
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            value = self[key]
        except KeyError:
            return default
        return default if value is None and key not in self else value

    def __contains__(self, key: object) -> bool:
        return key in self.to_dict()  # type: ignore[attr-defined]


# ---------------------------------------------------------------------- the records
@dataclass(kw_only=True)
class StepRecord(_KeyAccess):
    """One step of an episode: the agent's answer, what the env made of it, the reward and the editor's report."""

    t: int
    action: Any = None  # the agent's action as given to the env (normally the text)
    raw_output: str | None = field(default=None, metadata=LENIENT)  # the agent's raw text (``last_outputs``)
    parse_error: str | None = field(default=None, metadata=LENIENT)
    instruction: str | None = field(default=None, metadata=LENIENT)  # the instruction executed (``<STOP>``: a stop)
    valid: bool = True
    invalid_reason: str | None = field(default=None, metadata=LENIENT)
    stop: bool = False
    reward: float | None = 0.0  # None: the env's reward was not finite (written as null)
    reward_total: float | None = None
    reward_components: dict[str, Any] | None = None
    reward_errors: dict[str, Any] | None = None
    editor_seed: int | None = None
    editor_status: dict[str, Any] | None = None
    editor_error: str | None = field(default=None, metadata=LENIENT)
    timings: dict[str, Any] | None = None  # agent_s, agent_batch, editor_s, reward_s
    image: str | None = None  # the step's PNG, relative to the run folder (images mode steps / both)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> "StepRecord":
        values = _read(cls, data, where, "a step record")
        for name in ("valid", "stop"):  # an explicit null keeps the default
            if values.get(name) is None:
                values.pop(name, None)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = {key: getattr(self, name) for name, (key, _, _) in _field_spec(type(self)).items()}
        if out["image"] is None:  # written only when the step has an image (as the engine always did)
            del out["image"]
        return {**out, **self.extra}


@dataclass(kw_only=True)
class EpisodeRecord(_KeyAccess):
    """One finished episode: who played which task with which seeds, every step, the outcome, where its images are."""

    agent: str
    task_id: str
    task_index: int | None = None
    group_index: int
    member_index: int
    group_seed: int | None = None
    editor_seed: int | None = None  # the episode's editor seed (from reset)
    instruction: str | None = field(default=None, metadata=LENIENT)  # the task's instruction
    steps: list[StepRecord] = field(default_factory=list)  # written right after ``instruction``
    num_steps: int | None = None
    num_edits: int | None = None  # valid, non-stop steps
    terminated: bool | None = None
    truncated: bool | None = None
    total_return: float | None = field(default=None, metadata={"key": "return"})  # the sum of the step rewards
    final_reward: float | None = None  # the last step's reward_total (None: not scored)
    final_components: dict[str, Any] | None = None  # the last step's reward components
    success: bool | None = None  # final_components["success"] >= 0.5 (None: not scored)
    images: dict[str, str] = field(default_factory=dict)  # "source", "strip": paths relative to the run folder
    wall_s: float | None = None
    schema_version: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    _READ_ONLY: ClassVar[tuple[str, ...]] = ("steps", "schema_version")

    @property
    def key(self) -> EpisodeKey:
        """``(agent, task id, group index, member index)``: an episode's identity in a run folder."""
        return (self.agent, self.task_id, self.group_index, self.member_index)

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> "EpisodeRecord":
        """A record from its JSON object (any version up to :data:`SCHEMA_VERSION`); ``where`` (``file:line``)
        prefixes every error."""
        values = _read(cls, data, where, "an episode record")
        version = data.get("schema_version", 1)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise _bad(where, "schema_version", version, "a positive int")
        if version > SCHEMA_VERSION:
            raise _error(where, f"schema_version {version} is newer than this mira-env reads ({SCHEMA_VERSION}); "
                                "upgrade mira-env to read this run folder")
        if "steps" not in data:
            raise _missing(where, "steps", data, "an episode record")
        steps = data["steps"]
        if not isinstance(steps, list):
            raise _bad(where, "steps", steps, "a list of step objects")
        values["steps"] = [StepRecord.from_dict(step, f"{where}: steps[{i}]" if where else f"steps[{i}]")
                           for i, step in enumerate(steps)]
        values["images"] = {str(k): v for k, v in (values.get("images") or {}).items()}
        values["schema_version"] = SCHEMA_VERSION  # read into the current version's fields
        return cls(**values)

    @classmethod
    def from_json(cls, line: str | bytes, where: str = "") -> "EpisodeRecord":
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise _error(where, f"not JSON ({exc}); fix or delete that line") from exc
        return cls.from_dict(data, where)

    @classmethod
    def coerce(cls, record: "EpisodeRecord | Mapping[str, Any]", where: str = "") -> "EpisodeRecord":
        """``record`` itself, or a mapping read with :meth:`from_dict` (the boundary of functions taking both)."""
        return record if isinstance(record, EpisodeRecord) else cls.from_dict(record, where)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of the record (``schema_version`` first, then the fields, then ``extra``)."""
        out: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
        for name, (key, _, _) in _field_spec(type(self)).items():
            out[key] = getattr(self, name)
            if name == "instruction":
                out["steps"] = [step.to_dict() for step in self.steps]
        return {**out, **self.extra}

    def to_json(self) -> str:
        """One ``episodes.jsonl`` line (without its newline): ASCII JSON, NaN as null."""
        return json.dumps(to_jsonable(self.to_dict()), ensure_ascii=True)


# ---------------------------------------------------------------------- reading a run folder
def episodes_path(path_or_folder: str | os.PathLike) -> Path:
    """``episodes.jsonl`` of a run folder, or the file itself."""
    path = Path(path_or_folder)
    return path / EPISODES_FILE if path.is_dir() else path


def iter_episodes(path_or_folder: str | os.PathLike) -> Iterator[EpisodeRecord]:
    """The records of an ``episodes.jsonl`` (or of a run folder), in file order.

    A last line without its newline is a write in progress (or a killed one) and is skipped; any other
    unreadable line raises :class:`EpisodeRecordError` naming ``file:line`` and the bad key.
    """
    path = episodes_path(path_or_folder)
    if not path.is_file():
        raise EpisodeRecordError(f"{str(path)!r} is not a file; pass a run folder holding {EPISODES_FILE} or the file")
    data = path.read_bytes()
    lines = data.split(b"\n")
    complete = lines[:-1]  # the part after the last newline is torn (or empty)
    for number, line in enumerate(complete, start=1):
        if line.strip():
            yield EpisodeRecord.from_json(line, f"{path}:{number}")


def load_episodes(path_or_folder: str | os.PathLike) -> list[EpisodeRecord]:
    """Every record of a run folder's ``episodes.jsonl`` (or of that file): see :func:`iter_episodes`."""
    return list(iter_episodes(path_or_folder))


__all__ = ["EPISODES_FILE", "SCHEMA_VERSION", "EpisodeKey", "EpisodeRecord", "EpisodeRecordError", "StepRecord",
           "episodes_path", "iter_episodes", "load_episodes", "to_jsonable"]
