"""Reading a whole JSON file (a benchmark's metadata, a session file, a manifest) with one wording of its errors.

JSON Lines files are read line by line with :func:`mira_env.jsonl.iter_jsonl` instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mira_env.errors import TaskError, describe


def read_json(path: str | os.PathLike, kind: type | tuple[type, ...], expected: str, where: str | None = None) -> Any:
    """The JSON value of the file ``path``, which must be of type ``kind`` (``dict``, ``list``);
    :class:`TaskError` naming the file (``where``, default the path) and the ``expected`` shape otherwise."""
    file = Path(path)
    where = str(file) if where is None else where
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except ValueError as exc:  # JSONDecodeError and undecodable bytes
        raise TaskError(f"{where}: not valid JSON ({exc})") from exc
    except RecursionError:
        raise TaskError(f"{where}: JSON nested too deeply to read") from None
    if not isinstance(data, kind):
        raise TaskError(f"{where}: expected {expected}, got {describe(data)}")
    return data
