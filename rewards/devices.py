"""Device resolution and the per-process model cache shared by the model-backed terms (CLIP, LPIPS, IQA, judge)."""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any, Callable, Hashable

from mira_env.rewards.errors import RewardConfigError, describe


def resolve_device(device: str | None) -> str:
    """``"auto"`` / ``None`` -> ``"cuda"`` when available else ``"cpu"``; other strings are checked by torch."""
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not isinstance(device, str):
        raise RewardConfigError(f"device={describe(device)} must be a str such as 'cpu', 'cuda', 'cuda:1' or 'auto'")
    try:
        torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise RewardConfigError(f"device={device!r} is not a torch device ({exc}); use 'cpu', 'cuda', 'cuda:N' "
                                "or 'auto'") from None
    return device


class ModelCache:
    """Models shared within a process, one per key (model name, device, precision, ...), built on first use.

    ``get(key, build)`` returns the cached model or calls ``build()`` once, under a lock, so concurrent terms never
    load the same weights twice; a failing ``build`` caches nothing."""

    def __init__(self) -> None:
        self._items: dict[Hashable, Any] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        with self._lock:
            if key not in self._items:
                self._items[key] = build()
            return self._items[key]

    def clear(self) -> None:
        """Forget every model (frees their memory once nothing else holds them)."""
        with self._lock:
            self._items.clear()


@contextlib.contextmanager
def torch_home(path: str | os.PathLike | None):
    """While inside: ``TORCH_HOME`` is ``path`` (where torch hub weights are read from); restored afterwards.
    ``None`` leaves it alone."""
    if path is None:
        yield
        return
    old = os.environ.get("TORCH_HOME")
    os.environ["TORCH_HOME"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TORCH_HOME", None)
        else:
            os.environ["TORCH_HOME"] = old
