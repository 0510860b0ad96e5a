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
    try:
        handle = location.open("rb")
    except OSError as exc:
        raise TaskError(f"cannot open the JSONL file {str(location)!r}: {exc.strerror or exc}") from exc
    with handle:
        for number, raw in enumerate(handle, start=1):
            where = f"{location.name}:{number}"
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise TaskError(f"{where}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                                f"save the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TaskError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
            except RecursionError:
                raise TaskError(f"{where}: JSON nested too deeply to read") from None
            if objects and not isinstance(record, dict):
                raise TaskError(f"{where}: expected a JSON object, got {describe(record)}")
            yield number, where, record
