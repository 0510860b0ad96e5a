"""Never run the same edit twice: deduplication within a call and an optional edit cache across calls.

An edit is identified by :func:`edit_key`: the image content (pixels, mode, size), the editor state it
carries (the shapes world's scene), the instruction, the seed, the per-call settings and the editor's
name. At GRPO's first turn a group of G rollouts shares I0 and the editor seeds, so a proposal that
several rollouts make is one edit, not G.

``DedupEditor(editor, cache=None)`` wraps any editor (in-process or :class:`RemoteEditor`):

- within ONE ``edit`` call, identical items are sent once and every duplicate gets its own copy of the
  result (``image.info`` included);
- with ``cache=EditCache(...)``, results of earlier calls are reused (in memory, LRU-bounded, and
  optionally on disk as ``<key>.png`` + ``<key>.json`` so a restarted run or another process reuses them);
- per-item failures (an :class:`~mira_env.errors.EditorError` in a slot) are never cached;
- ``stats()`` reports items, unique edits, cache hits and the hit rate; every ``log_every`` items the
  hit rate is logged (logger ``mira_env.editors.cache``, level INFO).

Only deterministic editors (``info.deterministic``) may be wrapped: for a sampling editor two identical
requests are meant to differ.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

from PIL import Image

from mira_env.editors.base import EDIT_STATUS_KEY, STATE_KEY, Editor, EditorInfo, check_batch
from mira_env.editors.state import encode_state
from mira_env.errors import ConfigError, describe
from mira_env.validate import check_int

logger = logging.getLogger(__name__)

#: bump when the key recipe changes, so an on-disk cache of another recipe is never read
KEY_VERSION = "1"


def image_digest(image: Image.Image) -> str:
    """SHA-256 of an image's mode, size and pixels (not its file encoding)."""
    digest = hashlib.sha256()
    digest.update(f"{image.mode}:{image.width}x{image.height}:".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def edit_key(image: Image.Image, instruction: str, seed: int, settings: dict | None = None,
             editor: str = "") -> str:
    """The identity of one edit (see the module docstring), as a hex string."""
    parts = [KEY_VERSION, editor, image_digest(image), encode_state(image.info.get(STATE_KEY)) or "",
             instruction, str(int(seed)), json.dumps(settings or {}, sort_keys=True, ensure_ascii=False)]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def _copy(image: Image.Image) -> Image.Image:
    out = image.copy()
    out.info = {key: (dict(value) if isinstance(value, dict) else value) for key, value in image.info.items()}
    return out


class EditCache:
    """Edit results by :func:`edit_key`: an LRU in memory, optionally mirrored in a folder.

    Args:
        max_items: results kept in memory (least recently used dropped first).
        path: a folder for ``<key>.png`` + ``<key>.json`` (state and status); read on a memory miss.
    """

    def __init__(self, max_items: int = 10_000, path: str | Path | None = None) -> None:
        check_int("EditCache max_items", max_items, minimum=0)
        self.max_items = max_items
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self.path.mkdir(parents=True, exist_ok=True)
        self._items: OrderedDict[str, Image.Image] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Image.Image | None:
        with self._lock:
            image = self._items.get(key)
            if image is not None:
                self._items.move_to_end(key)
        if image is None and self.path is not None:
            image = self._read(key)
            if image is not None:
                self._remember(key, image)
        with self._lock:
            if image is None:
                self.misses += 1
            else:
                self.hits += 1
        return None if image is None else _copy(image)

    def put(self, key: str, image: Image.Image) -> None:
        self._remember(key, _copy(image))
        if self.path is not None:
            self._write(key, image)

    def _remember(self, key: str, image: Image.Image) -> None:
        if self.max_items == 0:
            return
        with self._lock:
            self._items[key] = image
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def _read(self, key: str) -> Image.Image | None:
        png, meta = self.path / f"{key}.png", self.path / f"{key}.json"
        if not (png.is_file() and meta.is_file()):
            return None
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
            with Image.open(png) as opened:
                image = opened.convert("RGB")
        except (OSError, ValueError) as exc:
            logger.warning("edit cache entry %s is unreadable (%s); recomputing it", key, exc)
            return None
        if data.get("state") is not None:
            image.info[STATE_KEY] = data["state"]
        if isinstance(data.get("status"), dict):
            image.info[EDIT_STATUS_KEY] = data["status"]
        return image

    def _write(self, key: str, image: Image.Image) -> None:
        png, meta = self.path / f"{key}.png", self.path / f"{key}.json"
        tmp_png, tmp_meta = png.with_suffix(".png.tmp"), meta.with_suffix(".json.tmp")
        (image if image.mode == "RGB" else image.convert("RGB")).save(tmp_png, format="PNG")
        tmp_meta.write_text(json.dumps({"state": image.info.get(STATE_KEY), "status": image.info.get(EDIT_STATUS_KEY)},
                                       ensure_ascii=False), encoding="utf-8")
        tmp_png.replace(png)
        tmp_meta.replace(meta)  # the .json appears last: a reader never sees half an entry

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def __len__(self) -> int:
        return len(self._items)


class DedupEditor:
    """Wrap ``editor`` so identical edits run once per call (and once ever, with a ``cache``)."""

    def __init__(self, editor: Editor, cache: EditCache | None = None, log_every: int = 1000) -> None:
        info = getattr(editor, "info", None)
        if not isinstance(info, EditorInfo):
            raise ConfigError(f"DedupEditor needs an editor with an EditorInfo 'info', got {describe(editor)}")
        if not info.deterministic:
            raise ConfigError(f"editor {info.name!r} is not deterministic (info.deterministic=False): identical "
                              "requests are meant to differ, so they cannot be deduplicated or cached")
        self.editor, self.cache, self.log_every = editor, cache, int(log_every)
        self.info = EditorInfo(name=info.name, max_batch=info.max_batch, resolution=info.resolution,
                               deterministic=True, extras={**info.extras, "dedup": True,
                                                           "cache": cache is not None})
        self.calls = 0  # edit() calls
        self.items = 0  # items asked for
        self.executed = 0  # items sent to the wrapped editor
        self.cache_hits = 0
        self._logged_at = 0

    def edit(self, images: Sequence[Image.Image], instructions: Sequence[str], seeds: Sequence[int],
             **settings: Any) -> list[Any]:
        check_batch(images, instructions, seeds)
        self.calls += 1
        self.items += len(images)
        keys = [edit_key(image, text, seed, settings, self.info.name)
                for image, text, seed in zip(images, instructions, seeds)]
        results: dict[str, Any] = {}
        todo: dict[str, int] = {}  # key -> index of its first item
        for index, key in enumerate(keys):
            if key in results or key in todo:
                continue
            cached = self.cache.get(key) if self.cache is not None else None
            if cached is not None:
                results[key] = cached
                self.cache_hits += 1
            else:
                todo[key] = index
        if todo:
            picks = list(todo.values())
            sub = [images[i] for i in picks], [instructions[i] for i in picks], [seeds[i] for i in picks]
            outputs = self.editor.edit(*sub, **settings) if settings else self.editor.edit(*sub)
            if not isinstance(outputs, (list, tuple)) or len(outputs) != len(picks):
                got = len(outputs) if isinstance(outputs, (list, tuple)) else describe(outputs)
                raise ConfigError(f"editor {self.info.name!r} returned {got} outputs for {len(picks)} inputs")
            self.executed += len(picks)
            for key, output in zip(todo, outputs):
                results[key] = output
                if self.cache is not None and isinstance(output, Image.Image):
                    self.cache.put(key, output)
        seen: set[str] = set()
        out = []
        for key in keys:
            value = results[key]
            # the first occurrence gets the editor's object, each duplicate its own copy
            out.append(_copy(value) if key in seen and isinstance(value, Image.Image) else value)
            seen.add(key)
        self._maybe_log()
        return out

    def stats(self) -> dict[str, float]:
        """Items asked for, edits executed, duplicates saved, cache hits and hit rate."""
        saved = self.items - self.executed
        return {"items": self.items, "executed": self.executed, "saved": saved,
                "saved_rate": saved / self.items if self.items else 0.0, "cache_hits": self.cache_hits,
                "cache_hit_rate": self.cache.hit_rate if self.cache is not None else 0.0}

    def _maybe_log(self) -> None:
        if self.log_every > 0 and self.items - self._logged_at >= self.log_every:
            self._logged_at = self.items
            stats = self.stats()
            logger.info("edit dedup/cache: %d items, %d executed (%.1f%% saved), cache hit rate %.1f%%",
                        stats["items"], stats["executed"], 100 * stats["saved_rate"], 100 * stats["cache_hit_rate"])

    def __repr__(self) -> str:
        return f"DedupEditor({self.editor!r}, cache={self.cache is not None})"


__all__ = ["DedupEditor", "EditCache", "KEY_VERSION", "edit_key", "image_digest"]
