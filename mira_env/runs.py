"""Run folders: the resolved settings record, one writer at a time, atomic and redacted writes.

``mira run``, ``mira eval`` and the rollout engine (:class:`mira_env.agents.rollout.EpisodeStore`) share
this module, so every run folder behaves the same way:

- **Resolved settings.** A folder records the settings that decide what its episodes are
  (``run.json``). Reopening it with other settings is refused with the list of differences, or, with
  ``restart=True`` (``--restart``), its results are cleared and the run starts over. A folder that holds
  episodes but no settings record (settings unknown) is refused the same way: its episodes are never
  reused silently. Keys listed as ``mergeable`` (e.g. the agents of ``mira run``) may grow. Beside the
  settings, ``run.json`` records its ``provenance`` (:func:`provenance`: package version, git commit of the
  checkout, Python, time), rewritten by every session and never compared.
- **One writer.** :class:`RunLock` holds an exclusive ``flock`` on ``<folder>/.lock`` for the life of
  the run; a second process on the same folder gets :class:`RunFolderError` naming the holder. The
  kernel drops the lock when its process dies, so a killed run never leaves a stale lock.
- **Atomic writes.** :func:`atomic_write_text` / :func:`atomic_write_bytes` write a temp file with a
  unique name (pid and random suffix) beside the target, fsync it and rename it over the target.
- **No secrets.** Text written by :func:`atomic_write_text` and :func:`write_json` passes through
  :func:`mira_env.redact.redact` / :func:`~mira_env.redact.redact_obj`: a registered API key or a
  ``user:password@`` URL never reaches a file.
- **No half-written folders.** :class:`RunFolder` used as a context manager removes a folder that it
  created when the run fails before any result was written.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import socket
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from mira_env.errors import ConfigError, describe
from mira_env.redact import redact, redact_obj

SETTINGS_FILE = "run.json"
LOCK_FILE = ".lock"
#: results inside a run folder that ``restart`` clears (the settings record is rewritten)
RESULT_NAMES = ("episodes.jsonl", "images", "strips", "tasks", "tasks.json", "report.html", "summary.json",
                "metrics.json", "metrics.csv", "editors", "baseline")
#: longest file-name component built from data (most file systems allow 255 bytes)
MAX_NAME_BYTES = 120


class RunFolderError(ConfigError):
    """A run folder cannot be used as asked: other settings, another process, an unsafe path."""


# ---------------------------------------------------------------------------------------- writes
def _temp_path(target: Path) -> Path:
    return target.with_name(f".{target.name[:80]}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (unique temp file in the same folder, fsync, rename)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temp_path(target)
    try:
        with temporary.open("xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8, redacted) to ``path`` atomically."""
    return atomic_write_bytes(path, redact(text).encode("utf-8"))


def write_json(path: str | os.PathLike, data: Any, indent: int | None = 1) -> Path:
    """Write ``data`` as JSON (redacted, atomically)."""
    return atomic_write_bytes(path, json.dumps(redact_obj(data), indent=indent, ensure_ascii=False).encode("utf-8"))


def save_image(path: str | os.PathLike, image: Any) -> Path:
    """Save a PIL image (or an (H, W, 3) uint8 array) as PNG at ``path`` atomically."""
    import io

    import numpy as np
    from PIL import Image

    if not isinstance(image, Image.Image):
        image = Image.fromarray(np.asarray(image, dtype=np.uint8), "RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return atomic_write_bytes(path, buffer.getvalue())


# ---------------------------------------------------------------------------------------- paths
#: the longest slug: ids of any length (a 300-character id) still make valid file names
SLUG_MAX = 80


def slug(text: str) -> str:
    """A file-name-safe version of ``text``: one path component (no ``/``, no ``..``) of at most
    :data:`SLUG_MAX` characters; a short hash is added when characters had to change or be cut, so
    distinct texts keep distinct slugs."""
    import hashlib
    import re

    text = str(text)
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "x"
    if cleaned != text or len(cleaned) > SLUG_MAX:
        digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        cleaned = f"{cleaned[:SLUG_MAX - 13]}-{digest}"
    return cleaned


def safe_name(text: str, what: str = "name") -> str:
    """``text`` as ONE path component: refused when it is empty, ``.``/``..``, holds a separator, a NUL,
    or is longer than :data:`MAX_NAME_BYTES` bytes. Use :func:`mira_env.agents.rollout.slug`-style
    names for data that may hold anything."""
    if not isinstance(text, str) or not text or text in (".", "..") or "/" in text or "\\" in text \
            or "\x00" in text or len(text.encode("utf-8")) > MAX_NAME_BYTES:
        raise RunFolderError(f"{what} {describe(text)} cannot be a file name: it must be one path component "
                             f"(no '/', '\\\\', '..' or NUL) of 1..{MAX_NAME_BYTES} bytes; rename it")
    return text


def inside(root: str | os.PathLike, relative: str | os.PathLike, what: str = "path") -> Path:
    """``root / relative``, refused when it resolves outside ``root`` (``../``, absolute paths, links)."""
    base = Path(root).resolve()
    target = (base / relative).resolve()
    if target != base and base not in target.parents:
        raise RunFolderError(f"{what} {str(relative)!r} resolves to {str(target)!r}, outside {str(base)!r}; "
                             f"use a relative path inside the folder")
    return target


def fingerprint(path: str | os.PathLike | None) -> str | None:
    """A content fingerprint of a task file or folder (sha256 of the file; of every file's name, size and
    mtime in a folder), so a run folder notices a task file that changed under the same name."""
    import hashlib

    if path is None:
        return None
    location = Path(path)
    digest = hashlib.sha256()
    if location.is_file():
        with location.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    elif location.is_dir():
        for item in sorted(location.rglob("*")):
            if item.is_file():
                stat = item.stat()
                digest.update(f"{item.relative_to(location).as_posix()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    else:
        return None
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------------------------------- lock
#: folders this process holds, with how many RunLock objects share the hold (re-entrant within a process)
_HELD: dict[Path, list] = {}


class RunLock:
    """An exclusive, non-blocking lock on a run folder (``flock`` on ``<folder>/.lock``).

    Re-entrant within one process (``mira run`` holds the folder and its :class:`~mira_env.agents.store.EpisodeStore` takes it
    again); another process gets :class:`RunFolderError`.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self._handle = None
        self._key: Path | None = None

    def acquire(self) -> "RunLock":
        import fcntl

        if self.held:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        key = self.folder.resolve()
        shared = _HELD.get(key)
        if shared is not None:
            shared[1] += 1
            self._handle, self._key = shared[0], key
            return self
        handle = open(self.path, "a+", encoding="utf-8")  # held for the life of the run
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                handle.close()
                raise
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise RunFolderError(f"run folder {str(self.folder)!r} is in use by {holder}; wait for that run to "
                                 f"finish or use another output folder") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        handle.flush()
        self._handle, self._key = handle, key
        _HELD[key] = [handle, 1]
        return self

    def release(self) -> None:
        if self._handle is None:
            return
        shared = _HELD.get(self._key)
        self._handle = None
        if shared is None:
            return
        shared[1] -= 1
        if shared[1] <= 0:
            import fcntl

            del _HELD[self._key]
            fcntl.flock(shared[0].fileno(), fcntl.LOCK_UN)
            shared[0].close()

    @property
    def held(self) -> bool:
        return self._handle is not None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


# ---------------------------------------------------------------------------------------- settings
def settings_differences(saved: Mapping[str, Any], now: Mapping[str, Any], keys: Iterable[str]) -> list[str]:
    """``key=old -> new`` for every key in ``keys`` whose value differs (JSON-normalised)."""
    def norm(value: Any) -> Any:
        return json.loads(json.dumps(value, default=str))

    return [f"{key}={saved.get(key)!r} -> {norm(now.get(key))!r}" for key in keys
            if norm(saved.get(key)) != norm(now.get(key))]


def _has_results(folder: Path) -> bool:
    episodes = folder / "episodes.jsonl"
    if episodes.is_file() and episodes.stat().st_size > 0:
        return True
    editors = folder / "editors"
    return editors.is_dir() and any(p.stat().st_size > 0 for p in editors.glob("*/episodes.jsonl"))


def clear_results(folder: str | os.PathLike) -> None:
    """Remove the results of a run folder (episodes, images, reports); its lock and settings stay."""
    base = Path(folder)
    for name in RESULT_NAMES:
        target = base / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()


def resolve_settings(folder: str | os.PathLike, settings: Mapping[str, Any], *, keys: Sequence[str],
                     mergeable: Sequence[str] = (), restart: bool = False, flag: str = "--restart",
                     file: str = SETTINGS_FILE) -> dict[str, Any]:
    """Check ``settings`` against the folder's record and write the record; returns the settings written (the
    record adds their :func:`provenance`).

    ``keys`` decide the results: any difference refuses the folder (:class:`RunFolderError` listing them)
    unless ``restart``, which clears the results first. ``mergeable`` keys hold lists that are unioned
    with the recorded ones (earlier entries first). A folder with results but no record is refused too.
    """
    base = Path(folder)
    path = base / file
    data = dict(settings)
    if path.is_file():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            saved = None
            problem = f"its settings record {str(path)!r} is unreadable ({exc})"
        else:
            problem = None
        if saved is not None and not isinstance(saved, dict):
            saved, problem = None, f"its settings record {str(path)!r} is not a JSON object"
    else:
        saved, problem = None, f"it has no settings record ({file}), so what made them is unknown"
    if saved is None and _has_results(base):
        if not restart:
            raise RunFolderError(f"run folder {str(base)!r} holds results but {problem}; pass {flag} to clear it "
                                 f"and start over, or use another output folder")
        clear_results(base)
    elif saved is not None:
        changed = settings_differences(saved, data, keys)
        if changed and _has_results(base):
            if not restart:
                raise RunFolderError(f"run folder {str(base)!r} holds results made with other settings "
                                     f"({'; '.join(changed)}); use the same settings to resume, pass {flag} to "
                                     f"clear it and start over, or use another output folder")
            clear_results(base)
        elif not changed:
            for key in mergeable:
                data[key] = list(dict.fromkeys(list(saved.get(key) or []) + list(data.get(key) or [])))
    write_json(path, {**data, PROVENANCE_KEY: provenance()})
    return data


#: the key of ``run.json`` recording what code wrote the folder (never compared when resuming)
PROVENANCE_KEY = "provenance"


def git_commit(folder: str | os.PathLike) -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the git checkout holding ``folder``; ``(None, None)`` outside one (an installed
    wheel) or without git. ``dirty``: tracked files differ from the commit."""
    import subprocess

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None, None
    status = git("status", "--porcelain", "--untracked-files=no")
    return commit, None if status is None else bool(status)


def provenance() -> dict[str, Any]:
    """What wrote a run folder: the package version, the git commit of its checkout (when it runs from one) and
    whether tracked files had changes, the Python version, and the time (UTC, ISO 8601)."""
    import platform

    from mira_env import __version__

    source = Path(__file__).resolve().parent
    commit, dirty = git_commit(source) if (source.parent / ".git").exists() else (None, None)
    return {"mira_env_version": __version__, "git_commit": commit, "git_dirty": dirty,
            "python": platform.python_version(), "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


class RunFolder:
    """A run folder held for one run: lock, resolved settings, cleanup of a failed first run.

    Use as a context manager::

        with RunFolder(out, settings, keys=RESUME_KEYS, restart=args.restart) as folder:
            ...  # write episodes; folder.settings is what run.json holds

    On an exception, a folder this run created is removed when no result made it to disk.
    """

    def __init__(self, folder: str | os.PathLike, settings: Mapping[str, Any], *, keys: Sequence[str],
                 mergeable: Sequence[str] = (), restart: bool = False, flag: str = "--restart",
                 file: str = SETTINGS_FILE) -> None:
        self.path = Path(folder)
        self._request = dict(settings)
        self._keys, self._mergeable, self._restart, self._flag, self._file = keys, mergeable, restart, flag, file
        self.settings: dict[str, Any] = {}
        self.lock = RunLock(self.path)
        self.created = False

    def __enter__(self) -> "RunFolder":
        self.created = not self.path.exists()
        self.lock.acquire()
        try:
            self.settings = resolve_settings(self.path, self._request, keys=self._keys, mergeable=self._mergeable,
                                             restart=self._restart, flag=self._flag, file=self._file)
        except BaseException:
            self._abandon()
            raise
        return self

    def _abandon(self) -> None:
        self.lock.release()
        if self.created and self.path.is_dir() and not _has_results(self.path):
            shutil.rmtree(self.path, ignore_errors=True)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self._abandon()
        else:
            self.lock.release()


__all__ = ["LOCK_FILE", "MAX_NAME_BYTES", "PROVENANCE_KEY", "RESULT_NAMES", "SETTINGS_FILE", "RunFolder",
           "RunFolderError", "RunLock", "atomic_write_bytes", "atomic_write_text", "clear_results", "fingerprint",
           "git_commit", "inside", "provenance", "resolve_settings", "safe_name", "save_image", "settings_differences",
           "slug", "write_json"]
