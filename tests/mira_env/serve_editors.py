"""Editors served by the service tests, importable by spec (``tests.mira_env.serve_editors:slow_shapes``)."""

from __future__ import annotations

import os
import time

from mira_env.editors.base import EditorInfo, check_batch
from mira_env.shapes.editor import ShapesEditor


class SlowShapes(ShapesEditor):
    """The exact shapes editor, sleeping ``delay_s`` per call (a per-call setting too).

    Each call appends ``<pid> <batch size> <image sizes>`` to the file ``log``.
    """

    def __init__(self, delay_s: float = 0.0, log: str | None = None) -> None:
        super().__init__()
        self.delay_s, self.log = float(delay_s), log

    def edit(self, images, instructions, seeds, delay_s: float | None = None):
        if self.log:
            sizes = sorted({f"{image.width}x{image.height}" for image in images})
            with open(self.log, "a", encoding="utf-8") as handle:
                handle.write(f"{os.getpid()} {len(images)} {','.join(sizes)}\n")
        time.sleep(self.delay_s if delay_s is None else float(delay_s))
        return super().edit(images, instructions, seeds)


def slow_shapes(delay_s: float = 0.0, log: str | None = None) -> SlowShapes:
    return SlowShapes(delay_s, log)


class SettingsEditor:
    """Takes a per-call setting: ``edit(..., strength=1)`` brightens each image by ``strength``."""

    def __init__(self) -> None:
        self.info = EditorInfo(name="settings-editor")
        self.calls: list[tuple[int, int]] = []

    def edit(self, images, instructions, seeds, strength: int = 1):
        check_batch(images, instructions, seeds)
        self.calls.append((len(images), strength))
        return [image.point(lambda v: min(255, v + strength)) for image in images]


class PlainFactoryEditor:
    """A user's own class without EditorInfo: make_editor gives it one."""

    name = "my-editor"

    def edit(self, images, instructions, seeds):
        return [image.copy() for image in images]
