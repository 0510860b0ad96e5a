"""The resume state of ``mira data build`` (:mod:`mira_env.data.build`): which sessions a build in a folder has
finished (``build_state.jsonl``, one line per session), the deduplication key of a session, and the repair of
``records.jsonl`` after a killed build (records of unfinished sessions are removed, to be rebuilt)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

from PIL import Image

from mira_env.records import RECORDS_FILE

STATE_FILE = "build_state.jsonl"


def image_digest(image: Image.Image) -> str:
    """SHA-256 of the RGB pixels and size (the recipe of the session keys already written; do not change it)."""
    rgb = image.convert("RGB")
    return hashlib.sha256(f"{rgb.size}".encode() + rgb.tobytes()).hexdigest()


def session_key(source: Image.Image, instructions: Sequence[str]) -> str:
    """The deduplication key: the source's pixels and the normalised instructions."""
    payload = json.dumps([image_digest(source), [" ".join(t.lower().split()) for t in instructions]])
    return hashlib.sha256(payload.encode()).hexdigest()


def read_state(out: Path) -> dict[str, dict]:
    """The finished sessions of the build in ``out`` (session id -> its state line); a torn last line is skipped."""
    path = out / STATE_FILE
    done: dict[str, dict] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                done[row["session"]] = row
            except (ValueError, KeyError, TypeError):
                continue  # the torn last line of a killed build: that session is rebuilt
    return done


def repair_records(out: Path, done: dict[str, dict]) -> None:
    """Keep only well-formed record lines of finished sessions (a killed build leaves partial sessions)."""
    path = out / RECORDS_FILE
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
            if row["metadata"]["session_id"] in done:
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            continue
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text("".join(k + "\n" for k in kept), encoding="utf-8")
    os.replace(temporary, path)


def append_state(out: Path, row: dict) -> None:
    """Record one finished session (flushed to disk before the next starts, so a kill loses at most it)."""
    with (out / STATE_FILE).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


__all__ = ["STATE_FILE", "append_state", "image_digest", "read_state", "repair_records", "session_key"]
