"""The MIRA-Editing record format: one complex-instruction editing session with its atomic trajectory.

On disk a dataset is a folder with ``records.jsonl`` and the images beside it (paths relative to the
folder). One line::

    {"id": "shapes-test-00017",
     "source_image": "images/shapes-test-00017/source.png",
     "complex_instruction": "Remove the red circle, then paint the largest square blue",
     "variants": ["Paint the largest square blue after removing the red circle"],
     "trajectory": [{"instruction": "remove the red circle", "image": "images/shapes-test-00017/step_1.png"},
                    {"instruction": "make the largest square blue", "image": "images/.../step_2.png"}],
     "final_image": "images/shapes-test-00017/final.png",
     "target_image": "images/shapes-test-00017/target.png",
     "metadata": {"difficulty": 2, "source": "shapes"}}

``trajectory[i].image`` is the image AFTER step i; ``final_image`` is the last one (the source when
the trajectory is empty). ``target_image`` is optional (known in synthetic worlds). The same file
loads as tasks with :func:`mira_env.tasks.load_jsonl` (``complex_instruction``/``source_image`` are
understood) and as SFT samples with ``mira_env.train.data``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from PIL import Image

from mira_env.errors import TaskError, describe
from mira_env.jsonl import iter_jsonl
from mira_env.runs import inside, save_image, slug
from mira_env.tasks.images import load_image

RECORDS_FILE = "records.jsonl"


@dataclass
class TrajectoryStep:
    """One atomic instruction and the image after executing it (in memory or as a path)."""

    instruction: str
    image: Image.Image | None = None
    image_path: str | None = None


@dataclass
class EditingRecord:
    """A MIRA-Editing record. Images are PIL images in memory or paths relative to ``root``."""

    id: str
    complex_instruction: str
    source_image: Image.Image | None = None
    source_path: str | None = None
    trajectory: list[TrajectoryStep] = field(default_factory=list)
    variants: list[str] = field(default_factory=list)
    final_image: Image.Image | None = None
    final_path: str | None = None
    target_image: Image.Image | None = None
    target_path: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    root: str | None = None

    def _load(self, image: Image.Image | None, path: str | None, what: str) -> Image.Image | None:
        if image is not None:
            return image
        if path is None:
            return None
        return load_image(path, record=f"record {self.id!r} ({what})", root=self.root)

    def load_source(self) -> Image.Image:
        image = self._load(self.source_image, self.source_path, "source_image")
        if image is None:
            raise TaskError(f"record {self.id!r} has no source image")
        return image

    def load_step_image(self, index: int) -> Image.Image:
        """The image after step ``index`` (0-based)."""
        step = self.trajectory[index]
        image = self._load(step.image, step.image_path, f"trajectory[{index}].image")
        if image is None:
            raise TaskError(f"record {self.id!r}: trajectory[{index}] has no image")
        return image

    def load_final(self) -> Image.Image:
        image = self._load(self.final_image, self.final_path, "final_image")
        if image is not None:
            return image
        return self.load_step_image(len(self.trajectory) - 1) if self.trajectory else self.load_source()

    def load_target(self) -> Image.Image | None:
        return self._load(self.target_image, self.target_path, "target_image")


def _save(image: Image.Image, folder: Path, relative: str) -> str:
    save_image(inside(folder, relative, "record image path"), image)
    return relative


def record_to_json(record: EditingRecord, folder: str | os.PathLike) -> dict[str, Any]:
    """Write the record's in-memory images under ``folder/images/<slug of id>/`` and return its JSON dict.

    The folder name is :func:`mira_env.runs.slug` of the id: one bounded path component whatever the id
    holds (``../``, 300 characters, any script), so no image lands outside ``folder``.
    """
    base = Path(folder)
    prefix = f"images/{slug(record.id)}"

    def place(image: Image.Image | None, path: str | None, name: str) -> str | None:
        if image is not None:
            return _save(image, base, f"{prefix}/{name}.png")
        return path

    source = place(record.source_image, record.source_path, "source")
    if source is None:
        raise TaskError(f"record {record.id!r} has no source image to write")
    steps = [{"instruction": step.instruction,
              "image": place(step.image, step.image_path, f"step_{index + 1}")}
             for index, step in enumerate(record.trajectory)]
    final = place(record.final_image, record.final_path, "final")
    if final is None:
        final = steps[-1]["image"] if steps else source
    return {"id": record.id, "source_image": source, "complex_instruction": record.complex_instruction,
            "variants": list(record.variants), "trajectory": steps, "final_image": final,
            "target_image": place(record.target_image, record.target_path, "target"),
            "metadata": record.metadata}


def write_records(records: Iterable[EditingRecord], folder: str | os.PathLike, *,
                  append: bool = False) -> Path:
    """Write records as ``folder/records.jsonl`` plus PNG images; returns the JSONL path."""
    base = Path(folder)
    base.mkdir(parents=True, exist_ok=True)
    path = base / RECORDS_FILE
    with path.open("a" if append else "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record_to_json(record, base)) + "\n")
    return path


def _parse(raw: Any, where: str, root: str) -> EditingRecord:
    if not isinstance(raw, dict):
        raise TaskError(f"{where}: expected a JSON object, got {describe(raw)}")
    for name in ("id", "complex_instruction", "source_image"):
        if not isinstance(raw.get(name), str) or not raw[name].strip():
            raise TaskError(f"{where}: field {name!r} must be a non-empty string, got {describe(raw.get(name))}")
    trajectory = raw.get("trajectory", [])
    if not isinstance(trajectory, list):
        raise TaskError(f"{where}: field 'trajectory' must be a list, got {describe(trajectory)}")
    steps = []
    for index, step in enumerate(trajectory):
        if not isinstance(step, dict) or not isinstance(step.get("instruction"), str):
            raise TaskError(f"{where}: trajectory[{index}] must be an object with a string 'instruction', "
                            f"got {describe(step)}")
        image = step.get("image")
        if image is not None and not isinstance(image, str):
            raise TaskError(f"{where}: trajectory[{index}].image must be a path string, got {describe(image)}")
        steps.append(TrajectoryStep(instruction=step["instruction"], image_path=image))
    variants = raw.get("variants", [])
    if not isinstance(variants, list) or not all(isinstance(v, str) for v in variants):
        raise TaskError(f"{where}: field 'variants' must be a list of strings, got {describe(variants)}")
    metadata = raw.get("metadata", {})
    if not isinstance(metadata, dict):
        raise TaskError(f"{where}: field 'metadata' must be an object, got {describe(metadata)}")
    return EditingRecord(id=raw["id"], complex_instruction=raw["complex_instruction"],
                         source_path=raw["source_image"], trajectory=steps, variants=variants,
                         final_path=raw.get("final_image"), target_path=raw.get("target_image"),
                         metadata=metadata, root=root)


def iter_records(path: str | os.PathLike) -> Iterator[EditingRecord]:
    """Records from ``records.jsonl`` (or a folder holding it); errors name the file and line."""
    location = Path(path)
    if location.is_dir():
        location = location / RECORDS_FILE
    if not location.is_file():
        raise TaskError(f"record file {str(location)!r} does not exist")
    root = str(location.parent)
    for _, where, raw in iter_jsonl(location, objects=False):
        yield _parse(raw, where, root)


def read_records(path: str | os.PathLike) -> list[EditingRecord]:
    """All records of a MIRA-Editing JSONL file or folder."""
    return list(iter_records(path))
