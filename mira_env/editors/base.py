"""The batched ``Editor`` protocol every editor implements, and the trivial editors.

Contract: ``edit(images, instructions, seeds)`` takes three equally long lists and returns one
edited ``PIL.Image`` per input, in order, in ONE call for the whole batch (editors split internally
when ``info.max_batch`` is smaller). Editors must be deterministic given the seed.

An editor may report per-item status by setting ``image.info[EDIT_STATUS_KEY]`` on an output image
to a dict such as ``{"ok": False, "reason": "no object matches 'the red star'"}``; the environment
copies it into ``info["editor_status"]``. Editors that carry world state (the shapes world keeps its
scene graph) store it in ``image.info[STATE_KEY]``; ``Image.copy()`` keeps ``info``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

from PIL import Image

from mira_env.errors import EditorError
from mira_env.validate import check_int

#: ``PIL.Image.info`` key under which an editor may report the status of one edit.
EDIT_STATUS_KEY = "mira.edit_status"
#: ``PIL.Image.info`` key under which a stateful editor keeps its world state (JSON-like, comparable
#: with ``==``); the environment shows it in ``info["state"]`` at reset and after every step.
STATE_KEY = "mira.state"


@dataclass(frozen=True)
class EditorInfo:
    """What an editor declares about itself."""

    name: str
    max_batch: int = 1_000_000
    resolution: tuple[int, int] | None = None  # (height, width) it works at, None = any
    deterministic: bool = True
    extras: dict = field(default_factory=dict)


@runtime_checkable
class Editor(Protocol):
    """A batched image editor."""

    info: EditorInfo

    def edit(self, images: Sequence[Image.Image], instructions: Sequence[str],
             seeds: Sequence[int]) -> list[Image.Image]: ...


def check_batch(images: Sequence[object], instructions: Sequence[object], seeds: Sequence[object]) -> None:
    """Raise :class:`EditorError` unless the three batch lists are equally long and well typed."""
    if not (len(images) == len(instructions) == len(seeds)):
        raise EditorError(f"edit() needs equally long lists; got {len(images)} images, "
                          f"{len(instructions)} instructions, {len(seeds)} seeds")
    for index, (image, text, seed) in enumerate(zip(images, instructions, seeds)):
        if not isinstance(image, Image.Image):
            raise EditorError(f"edit(): images[{index}] is {type(image).__name__}, expected PIL.Image.Image")
        if not isinstance(text, str):
            raise EditorError(f"edit(): instructions[{index}] is {type(text).__name__}, expected str")
        check_int(f"edit(): seeds[{index}]", seed, minimum=None, error=EditorError)


def edit_status(image: Image.Image) -> dict | None:
    """The status dict an editor attached to an output image, if any."""
    status = image.info.get(EDIT_STATUS_KEY)
    return dict(status) if isinstance(status, dict) else None


class IdentityEditor:
    """Returns every image unchanged: a no-op editor for overhead measurements and plumbing tests."""

    def __init__(self) -> None:
        self.info = EditorInfo(name="identity")
        self.calls = 0

    def edit(self, images, instructions, seeds):
        check_batch(images, instructions, seeds)
        self.calls += 1
        return [image.copy() for image in images]
