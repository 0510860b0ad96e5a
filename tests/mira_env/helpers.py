"""Small real editors and reward functions used by the core environment tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from mira_env import EditorInfo, RewardOutput, Task
from mira_env.editors.base import check_batch


def gradient_image(width: int = 48, height: int = 40, offset: int = 0) -> Image.Image:
    """A non-constant RGB test image (a constant one would be flagged as a blank editor output)."""
    x = np.linspace(0, 255, width, dtype=np.float64)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float64)[:, None, None]
    array = np.concatenate([np.broadcast_to(x, (height, width, 1)), np.broadcast_to(y, (height, width, 1)),
                            np.full((height, width, 1), offset, dtype=np.float64)], axis=2)
    return Image.fromarray(array.astype(np.uint8), "RGB")


def make_tasks(count: int = 3) -> list[Task]:
    return [Task(id=f"task-{i}", instruction=f"make object {i} red and add a hat",
                 image=gradient_image(offset=20 * i)) for i in range(count)]


class SeededNoiseEditor:
    """Adds seed-determined noise and a brightness shift by instruction length: deterministic per seed."""

    def __init__(self) -> None:
        self.info = EditorInfo(name="seeded-noise")
        self.batches: list[int] = []
        self.seen: list[str] = []

    def edit(self, images, instructions, seeds):
        check_batch(images, instructions, seeds)
        self.batches.append(len(images))
        self.seen.extend(instructions)
        outputs = []
        for image, text, seed in zip(images, instructions, seeds):
            rng = np.random.default_rng(seed)
            array = np.asarray(image, dtype=np.int16) + rng.integers(-8, 9, size=(image.height, image.width, 3))
            array = array + (len(text) % 7)
            outputs.append(Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), "RGB"))
        return outputs


class FailingEditor:
    """Raises, or returns a malformed result, as configured."""

    def __init__(self, mode: str) -> None:
        self.info = EditorInfo(name=f"failing-{mode}")
        self.mode = mode

    def edit(self, images, instructions, seeds):
        if self.mode == "raise":
            raise RuntimeError("CUDA out of memory (simulated by the test editor)")
        if self.mode == "blank":
            return [Image.new("RGB", image.size, (0, 0, 0)) for image in images]
        if self.mode == "nan":
            array = np.full((images[0].height, images[0].width, 3), np.nan)
            return [Image.fromarray(np.nan_to_num(array).astype(np.uint8), "RGB") for _ in images]
        if self.mode == "array":
            return [np.asarray(image) for image in images]
        if self.mode == "short":
            return []
        raise AssertionError(self.mode)


class MeanBrightnessReward:
    """Scores the edited image's mean brightness in [0, 1]; counts its calls and batch sizes."""

    component_names = ("brightness", "steps")

    def __init__(self) -> None:
        self.batches: list[int] = []

    def score(self, items):
        self.batches.append(len(items))
        outputs = []
        for item in items:
            value = float(np.asarray(item.edited, dtype=np.float64).mean() / 255.0)
            outputs.append(RewardOutput(total=value, components={"brightness": value,
                                                                 "steps": float(len(item.trajectory))}))
        return outputs


def write_magicbrush(folder: Path, count: int = 2) -> Path:
    """A MagicBrush-shaped JSONL task file: img_id, turn_index, source_img, instruction, target_img."""
    rng = np.random.default_rng(0)
    lines = []
    for index in range(count):
        for name in ("source", "target"):
            Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(folder / f"{index}_{name}.png")
        lines.append(json.dumps({"img_id": 100 + index, "turn_index": 1, "source_img": f"{index}_source.png",
                                 "instruction": f"put a hat on person {index}", "target_img": f"{index}_target.png"}))
    path = folder / "magicbrush.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path
