"""Multi-turn editing sessions: the raw material of MIRA-Editing records (``mira data build``).

A session is one source image and the turns a user applied to it, each with the image after the turn
(MagicBrush: ``img_id`` / ``turn_index`` / ``source_img`` / ``instruction`` / ``target_img``). It may
also carry *candidate trajectories*: the same session re-executed by an editor (for instance with
``mira run`` on the session's tasks), each a list of (instruction, image) steps; ``mira data build``
ranks them with a reward and keeps the best.

Readers (:func:`load_sessions` picks one from the path):

- the **generic sessions JSONL** documented in ``docs/data.md``, one session per line::

      {"id": "s1", "source_image": "images/s1/source.png",
       "turns": [{"instruction": "add a hat to the dog", "image": "images/s1/turn_1.png"},
                 {"instruction": "make the sky pink", "image": "images/s1/turn_2.png"}],
       "candidates": [{"name": "flux-seed0", "steps": [{"instruction": "add a hat to the dog",
                                                        "image": "runs/flux/s1/1.png"}, ...]}],
       "metadata": {"source": "my-annotators"}}

  (paths relative to the file's folder; ``candidates`` and ``metadata`` optional);
- **MagicBrush turn rows** (JSONL or JSON list, one turn per row: ``img_id``, ``turn_index``,
  ``source_img``, ``instruction``, ``target_img``), grouped by ``img_id`` and ordered by ``turn_index``;
- MagicBrush's **original JSON release** and its **hub parquet** (:mod:`mira_env.tasks.benchmarks`).

Candidates from a ``mira run`` folder (``episodes.jsonl``) attach with :func:`attach_episode_candidates`:
an episode whose ``task_id`` is a session id becomes one candidate of that session.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from PIL import Image

from mira_env.errors import TaskError, describe
from mira_env.jsonl import iter_jsonl
from mira_env.tasks.files import read_json
from mira_env.tasks.images import load_image, normalize_image

#: Name of the candidate made of the session's own turn images.
REFERENCE = "reference"


#: A deferred image: called when the image is needed (parquet cells are read this way, not held in memory).
ImageLoader = Callable[[], Image.Image]


@dataclass
class SessionStep:
    """One turn: the atomic instruction and the image after it (in memory, a path under ``root``, or a loader)."""

    instruction: str
    image: Image.Image | None = None
    image_path: str | None = None
    root: str | None = None
    image_loader: ImageLoader | None = None

    @property
    def has_image(self) -> bool:
        return self.image is not None or self.image_path is not None or self.image_loader is not None

    def load(self, what: str = "step") -> Image.Image:
        if self.image is not None:
            return normalize_image(self.image, record=what)
        if self.image_loader is not None:
            return normalize_image(self.image_loader(), record=what)
        if self.image_path is None:
            raise TaskError(f"{what}: no image and no image path")
        return load_image(self.image_path, record=what, root=self.root)


@dataclass
class Candidate:
    """One trajectory executing a session: its steps (instruction + image after it) and where it came from."""

    name: str
    steps: list[SessionStep]
    origin: str = "session"


@dataclass
class EditingSession:
    """A multi-turn editing session (see the module docstring). ``turns`` are in the session's order."""

    id: str
    turns: list[SessionStep]
    source_image: Image.Image | None = None
    source_path: str | None = None
    root: str | None = None
    candidates: list[Candidate] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    source_loader: ImageLoader | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip():
            raise TaskError(f"session id must be a non-empty string, got {describe(self.id)}")
        if self.source_image is None and self.source_path is None and self.source_loader is None:
            raise TaskError(f"session {self.id!r} has no source image")
        if not self.turns:
            raise TaskError(f"session {self.id!r} has no turns")
        for index, turn in enumerate(self.turns):
            if not isinstance(turn.instruction, str) or not turn.instruction.strip():
                raise TaskError(f"session {self.id!r}: turn {index + 1} has an empty instruction "
                                f"({describe(turn.instruction)})")

    @property
    def instructions(self) -> list[str]:
        return [" ".join(turn.instruction.split()) for turn in self.turns]

    def load_source(self) -> Image.Image:
        what = f"session {self.id!r} (source image)"
        if self.source_image is not None:
            return normalize_image(self.source_image, record=what)
        if self.source_loader is not None:
            return normalize_image(self.source_loader(), record=what)
        return load_image(self.source_path, record=what, root=self.root)

    def all_candidates(self) -> list[Candidate]:
        """The reference trajectory (the session's own turn images, when every turn has one) and the others."""
        own = [Candidate(REFERENCE, list(self.turns), "session")] if all(turn.has_image for turn in self.turns) else []
        return own + list(self.candidates)


def _step(raw: Any, where: str, root: str, index: int) -> SessionStep:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("instruction"), str):
        raise TaskError(f"{where}: step {index} must be an object with a string 'instruction', got {describe(raw)}")
    image = raw.get("image")
    if image is not None and not isinstance(image, str):
        raise TaskError(f"{where}: step {index} 'image' must be a path string, got {describe(image)}")
    return SessionStep(raw["instruction"], image_path=image, root=root)


def session_from_json(raw: Any, *, where: str, root: str) -> EditingSession:
    """One session of the generic JSONL (see the module docstring); errors name ``where``."""
    if not isinstance(raw, Mapping):
        raise TaskError(f"{where}: expected a JSON object, got {describe(raw)}")
    for name in ("id", "source_image"):
        if not isinstance(raw.get(name), str) or not raw[name].strip():
            raise TaskError(f"{where}: field {name!r} must be a non-empty string, got {describe(raw.get(name))}")
    turns = raw.get("turns")
    if not isinstance(turns, list) or not turns:
        raise TaskError(f"{where}: field 'turns' must be a non-empty list of {{instruction, image}} objects, "
                        f"got {describe(turns)}")
    steps = [_step(turn, where, root, i + 1) for i, turn in enumerate(turns)]
    candidates = []
    for number, candidate in enumerate(raw.get("candidates") or []):
        if not isinstance(candidate, Mapping) or not isinstance(candidate.get("steps"), list):
            raise TaskError(f"{where}: candidates[{number}] must be an object with a 'steps' list, "
                            f"got {describe(candidate)}")
        name = str(candidate.get("name") or f"candidate-{number}")
        candidate_steps = [_step(s, where, root, i + 1) for i, s in enumerate(candidate["steps"])]
        if any(s.image_path is None for s in candidate_steps):
            raise TaskError(f"{where}: candidate {name!r}: every step needs an 'image'")
        candidates.append(Candidate(name, candidate_steps, "file"))
    metadata = raw.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise TaskError(f"{where}: field 'metadata' must be an object, got {describe(metadata)}")
    return EditingSession(id=raw["id"], turns=steps, source_path=raw["source_image"], root=root,
                          candidates=candidates, metadata=dict(metadata))


def sessions_from_turn_rows(rows: Iterable[tuple[str, Mapping[str, Any]]], *, root: str | None,
                            source_name: str = "magicbrush") -> list[EditingSession]:
    """Group MagicBrush-shaped turn rows ``(where, row)`` into sessions by ``img_id``, ordered by ``turn_index``.

    Image fields may be paths (relative to ``root``), PIL images, or loaders (callables returning one: the
    hub parquet's cells, read when needed). Turn indices of
    a session must be distinct; the session's source is the first turn's ``source_img``.
    """
    grouped: dict[str, list[tuple[int, str, Mapping[str, Any]]]] = defaultdict(list)
    for where, row in rows:
        if not isinstance(row, Mapping):
            raise TaskError(f"{where}: expected an object, got {describe(row)}")
        for name in ("img_id", "turn_index", "source_img", "instruction", "target_img"):
            if row.get(name) is None:
                raise TaskError(f"{where}: MagicBrush turn rows need the field {name!r} (fields: img_id, "
                                f"turn_index, source_img, instruction, target_img); it is missing")
        try:
            turn = int(row["turn_index"])
        except (TypeError, ValueError):
            raise TaskError(f"{where}: turn_index must be an integer, got {describe(row['turn_index'])}") from None
        grouped[str(row["img_id"])].append((turn, where, row))
    sessions = []
    for img_id, turns in grouped.items():
        turns.sort(key=lambda item: item[0])
        indices = [t for t, _, _ in turns]
        if len(set(indices)) != len(indices):
            raise TaskError(f"session {img_id!r}: turn_index values {indices} repeat ({turns[0][1]}); "
                            "each turn of a session needs its own index")

        def ref(value: Any) -> dict[str, Any]:
            if isinstance(value, Image.Image):
                return {"image": value}
            if callable(value):
                return {"loader": value}
            return {"path": str(value)}

        source = ref(turns[0][2]["source_img"])
        steps = []
        for _, _, row in turns:
            target = ref(row["target_img"])
            steps.append(SessionStep(str(row["instruction"]), image=target.get("image"), image_path=target.get("path"),
                                     root=root, image_loader=target.get("loader")))
        sessions.append(EditingSession(id=img_id, turns=steps, source_image=source.get("image"),
                                       source_path=source.get("path"), source_loader=source.get("loader"), root=root,
                                       metadata={"source": source_name, "turn_index": indices}))
    return sessions


def read_sessions_jsonl(path: str | os.PathLike) -> list[EditingSession]:
    """Sessions from a generic sessions JSONL, or from MagicBrush turn rows (JSONL or a JSON list)."""
    file = Path(path)
    if not file.is_file():
        raise TaskError(f"session file {str(file)!r} does not exist")
    root = str(file.parent)
    if file.suffix == ".json":
        data = read_json(file, list, "a list of MagicBrush turn rows (a .json session file)", where=file.name)
        rows = [(f"{file.name}[{i}]", row) for i, row in enumerate(data)]
    else:
        rows = [(where, row) for _, where, row in iter_jsonl(file)]
    if not rows:
        raise TaskError(f"session file {str(file)!r} holds no rows")
    if all("turns" in row for _, row in rows):
        sessions = [session_from_json(row, where=where, root=root) for where, row in rows]
    elif all("img_id" in row for _, row in rows):
        sessions = sessions_from_turn_rows(rows, root=root)
    else:
        where = next((w for w, row in rows if "turns" not in row and "img_id" not in row), rows[0][0])
        raise TaskError(f"{where}: not a session row; give either a generic session ({{id, source_image, turns}}) "
                        "or a MagicBrush turn row ({img_id, turn_index, source_img, instruction, target_img}), "
                        "one kind per file")
    _check_unique(sessions, str(file))
    return sessions


def _check_unique(sessions: Sequence[EditingSession], where: str) -> None:
    seen: set[str] = set()
    for session in sessions:
        if session.id in seen:
            raise TaskError(f"{where}: session id {session.id!r} appears twice; session ids must be unique")
        seen.add(session.id)


def load_sessions(spec: str | os.PathLike, *, split: str | None = None) -> list[EditingSession]:
    """Sessions from a path: a generic / MagicBrush-rows ``.jsonl`` or ``.json`` file, a MagicBrush JSON
    release folder (``edit_sessions.json`` + ``images/``), or a MagicBrush hub parquet file or folder."""
    from mira_env.tasks import benchmarks

    location = Path(spec)
    if location.is_file() and location.name == "edit_sessions.json":
        return benchmarks.magicbrush_sessions(location.parent, split=split)
    if location.is_file() and location.suffix in (".jsonl", ".json"):
        return read_sessions_jsonl(location)
    if location.exists():
        return benchmarks.magicbrush_sessions(location, split=split)
    raise TaskError(f"sessions={str(spec)!r} does not exist; give a sessions .jsonl, MagicBrush turn rows, a "
                    "MagicBrush release folder (edit_sessions.json) or its hub parquet")


def attach_episode_candidates(sessions: Sequence[EditingSession], run_dir: str | os.PathLike) -> dict[str, int]:
    """Add every episode of a ``mira run`` folder whose ``task_id`` is a session id as a candidate of it.

    An episode's candidate steps are its valid, non-stop steps with their images (``images='steps'`` or
    ``'both'`` when the run was made). Returns ``{"attached": n, "unmatched": m, "without_images": k}``.
    """
    folder = Path(run_dir)
    path = folder / "episodes.jsonl"
    if not path.is_file():
        raise TaskError(f"candidate run folder {str(folder)!r} has no episodes.jsonl (write one with mira run)")
    by_id = {session.id: session for session in sessions}
    counts = {"attached": 0, "unmatched": 0, "without_images": 0}
    for _, _where, record in iter_jsonl(path):
        session = by_id.get(str(record.get("task_id")))
        if session is None:
            counts["unmatched"] += 1
            continue
        steps = [s for s in record.get("steps", []) if not s.get("stop") and s.get("valid", True)]
        if not steps or any(not isinstance(s.get("image"), str) for s in steps):
            counts["without_images"] += 1
            continue
        name = f"{record.get('agent', 'run')}/g{record.get('group_index', 0)}_m{record.get('member_index', 0)}"
        session.candidates.append(Candidate(name, [SessionStep(str(s["instruction"]), image_path=s["image"],
                                                               root=str(folder)) for s in steps], f"run:{folder}"))
        counts["attached"] += 1
    return counts


def write_session_tasks(sessions: Sequence[EditingSession], folder: str | os.PathLike) -> Path:
    """The sessions as a task file for ``mira run --task_file`` (to re-execute them with an editor).

    One task per session, ``id`` = the session id (so :func:`attach_episode_candidates` matches the
    episodes back), C = the turns merged in order, ``atomic_instructions`` = the turns, target = the
    last turn's image. Writes ``folder/tasks.jsonl`` and ``folder/images/``; returns the JSONL path.
    """
    from mira_env.data.merge import merge_ordered

    base = Path(folder)
    (base / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for number, session in enumerate(sessions):
        row: dict[str, Any] = {"id": session.id, "instruction": merge_ordered(session.instructions),
                               "image": f"images/{number:06d}_source.png",
                               "atomic_instructions": session.instructions}
        session.load_source().save(base / row["image"], format="PNG")
        if session.turns[-1].has_image:
            row["target"] = f"images/{number:06d}_target.png"
            session.turns[-1].load(f"session {session.id!r} last turn").save(base / row["target"], format="PNG")
        lines.append(json.dumps(row, ensure_ascii=False))
    path = base / "tasks.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path
