"""Leakage check: training sessions against evaluation task sets.

A session leaks into an evaluation set when any of these holds for some evaluation task:

- **same image**: the session's source image, or one of its turn images, has the same difference
  hash (dHash, 64 bits of a 9x8 greyscale thumbnail) as the task's source or target image: the same
  picture, even re-encoded or resized;
- **same MagicBrush session**: both come from MagicBrush and share the ``img_id``;
- **same instructions**: the session's turns, normalised (lower case, single spaces, no trailing
  punctuation), equal the task's atomic instructions, or a one-turn session's instruction equals the
  task's instruction.

``mira data build --eval-manifest/--eval-tasks`` drops leaking sessions (``--on-leak error`` fails
instead) and lists them in the build summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

from mira_env.errors import TaskError


def dhash(image: Image.Image) -> int:
    """The 64-bit difference hash of an image (robust to re-encoding and resizing, not to crops)."""
    grey = np.asarray(image.convert("L").resize((9, 8), Image.Resampling.LANCZOS), dtype=np.int16)
    bits = (grey[:, 1:] > grey[:, :-1]).flatten()
    return int("".join("1" if b else "0" for b in bits), 2)


def normalize_text(text: str) -> str:
    return " ".join(str(text).lower().split()).rstrip(" .!;,")


@dataclass
class LeakageIndex:
    """The evaluation side of the check: image hashes, MagicBrush ids and instruction texts of ``tasks``."""

    images: dict[int, str] = field(default_factory=dict)
    magicbrush_ids: dict[str, str] = field(default_factory=dict)
    sequences: dict[tuple[str, ...], str] = field(default_factory=dict)
    instructions: dict[str, str] = field(default_factory=dict)
    size: int = 0

    @classmethod
    def from_tasks(cls, tasks: Iterable, *, images: bool = True) -> "LeakageIndex":
        index = cls()
        for task in tasks:
            index.size += 1
            if images:
                for loader in (task.load_source, task.load_target):
                    try:
                        image = loader()
                    except TaskError as exc:
                        raise TaskError(f"leakage check: evaluation task {task.id!r}: {exc}") from exc
                    if image is not None:
                        index.images.setdefault(dhash(image), task.id)
            meta = dict(task.metadata or {})
            if meta.get("benchmark") == "magicbrush" and meta.get("img_id") is not None:
                index.magicbrush_ids.setdefault(str(meta["img_id"]), task.id)
            if task.atomic_instructions:
                index.sequences.setdefault(tuple(normalize_text(t) for t in task.atomic_instructions), task.id)
            index.instructions.setdefault(normalize_text(task.instruction), task.id)
        return index

    def check(self, session, images: Sequence[Image.Image] = ()) -> str | None:
        """Why ``session`` leaks into the evaluation set (naming the task), or ``None``.

        ``images``: the session's decoded source and turn images (hashed when the index has images).
        """
        source = str(session.metadata.get("source", ""))
        if source == "magicbrush" and session.id in self.magicbrush_ids:
            return f"same MagicBrush session img_id {session.id!r} as evaluation task {self.magicbrush_ids[session.id]!r}"
        turns = tuple(normalize_text(t) for t in session.instructions)
        if turns in self.sequences:
            return f"same instructions as evaluation task {self.sequences[turns]!r}"
        if len(turns) == 1 and turns[0] in self.instructions:
            return f"instruction {turns[0]!r} is evaluation task {self.instructions[turns[0]]!r}'s instruction"
        if self.images:
            for number, image in enumerate(images):
                task_id = self.images.get(dhash(image))
                if task_id is not None:
                    what = "source image" if number == 0 else f"turn {number} image"
                    return f"{what} matches an image of evaluation task {task_id!r} (same dHash)"
        return None
