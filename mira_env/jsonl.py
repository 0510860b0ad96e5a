"""Reading JSONL files line by line with errors that name the file and line."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

from mira_env.errors import TaskError, describe


def iter_jsonl(path: str | os.PathLike, *, objects: bool = True) -> Iterator[tuple[int, str, Any]]:
    """Yield ``(line_number, where, record)`` for each non-blank line of a JSONL file.

    ``where`` is ``"<file name>:<line>"`` for error messages. Invalid JSON raises
    :class:`~mira_env.errors.TaskError` naming the line and column; with ``objects=True`` (default)
    a line that is not a JSON object raises too.
    """
    location = Path(path)
    with location.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{location.name}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TaskError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
            if objects and not isinstance(record, dict):
                raise TaskError(f"{where}: expected a JSON object, got {describe(record)}")
            yield number, where, record
