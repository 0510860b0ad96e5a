"""Tiny copies of editing benchmarks in their published layouts, made by the tests (nothing downloaded).

Images are small seeded noise images; each image's colour offset encodes where it belongs, so a test
can check that a loader put the right picture in the right place (:func:`tag` reads it back).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image


def image(tag: int, size: tuple[int, int] = (32, 24)) -> Image.Image:
    """A noise image whose top-left pixel's red channel is ``tag`` (0..255)."""
    rng = np.random.default_rng(tag)
    array = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    array[0, 0] = (tag, 0, 0)
    return Image.fromarray(array, "RGB")


def tag(picture: Image.Image) -> int:
    return int(np.asarray(picture.convert("RGB"))[0, 0, 0])


#: MagicBrush sessions: img_id -> turn instructions (tags: 10 * session + turn, turn 0 = input)
MAGICBRUSH = {"30": ["Add a red hat to the dog.", "make the sky pink"], "242679": ["remove the car"]}


def write_magicbrush_release(root: Path) -> Path:
    """The original JSON release's test split: ``test/edit_sessions.json`` + ``test/images/<img_id>/``."""
    folder = root / "test"
    sessions = {}
    for number, (img_id, turns) in enumerate(MAGICBRUSH.items(), start=1):
        images = folder / "images" / img_id
        images.mkdir(parents=True, exist_ok=True)
        image(10 * number).save(images / f"{img_id}-input.png")
        entries = []
        for turn, instruction in enumerate(turns, start=1):
            image(10 * number + turn).save(images / f"{img_id}-output{turn}.png")
            Image.new("L", (32, 24), 255).save(images / f"{img_id}-mask{turn}.png")
            entries.append({"input": f"{img_id}-input.png" if turn == 1 else f"{img_id}-output{turn - 1}.png",
                            "mask": f"{img_id}-mask{turn}.png", "output": f"{img_id}-output{turn}.png",
                            "instruction": instruction})
        sessions[img_id] = entries
    (folder / "edit_sessions.json").write_text(json.dumps(sessions), encoding="utf-8")
    (folder / "edit_turns.json").write_text(json.dumps([t for s in sessions.values() for t in s]), encoding="utf-8")
    return root


def magicbrush_rows() -> list[dict]:
    """The turn rows of :data:`MAGICBRUSH` (hub columns), deliberately out of turn order."""
    rows = []
    for number, (img_id, turns) in enumerate(MAGICBRUSH.items(), start=1):
        for turn, instruction in enumerate(turns, start=1):
            rows.append({"img_id": img_id, "turn_index": turn, "source_img": image(10 * number + turn - 1),
                         "mask_img": Image.new("RGB", (32, 24), (255, 255, 255)), "instruction": instruction,
                         "target_img": image(10 * number + turn)})
    return rows[::-1]


def _to_parquet(rows: list[dict], path: Path, image_columns: set[str]) -> Path:
    import datasets

    features = {}
    for name, value in rows[0].items():
        if name in image_columns:
            features[name] = datasets.Image()
        elif isinstance(value, bool):
            features[name] = datasets.Value("bool")
        elif isinstance(value, int):
            features[name] = datasets.Value("int32")
        else:
            features[name] = datasets.Value("string")
    columns = {name: [row[name] for row in rows] for name in rows[0]}
    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_dict(columns, features=datasets.Features(features)).to_parquet(str(path))
    return path


def write_magicbrush_parquet(root: Path, split: str = "dev") -> Path:
    """The hub layout: ``data/<split>-00000-of-00001.parquet`` with the hub's columns and Image features."""
    _to_parquet(magicbrush_rows(), root / "data" / f"{split}-00000-of-00001.parquet",
                {"source_img", "mask_img", "target_img"})
    return root


def magicbrush_turn_rows_file(root: Path) -> Path:
    """MagicBrush turn rows as a JSONL with image paths (the layout ``mira data build`` documents)."""
    rows = []
    for number, (img_id, turns) in enumerate(MAGICBRUSH.items(), start=1):
        for turn, instruction in enumerate(turns, start=1):
            for t in (turn - 1, turn):
                path = root / "images" / f"{img_id}_{t}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                image(10 * number + t).save(path)
            rows.append({"img_id": img_id, "turn_index": turn, "source_img": f"images/{img_id}_{turn - 1}.png",
                         "instruction": instruction, "target_img": f"images/{img_id}_{turn}.png"})
    file = root / "magicbrush_train.jsonl"
    file.write_text("".join(json.dumps(r) + "\n" for r in rows[::-1]), encoding="utf-8")
    return file


def write_compbench(root: Path) -> Path:
    """The hub layout: ``data/train-*.parquet`` and ``data/multi_turn-*.parquet`` (CompBench's columns)."""
    train = [
        {"task": "add", "image_path": "001ca3cb/0/00003.png", "input_image": image(100), "edited_image": image(101),
         "mask": image(102), "instruction": "Add a lamp on the left table.", "caption": "a lamp"},
        {"task": "remove", "image_path": "02b72b8d/1/00016.png", "input_image": image(110),
         "edited_image": image(111), "mask": image(112), "instruction": "Remove the cup.", "caption": "a cup"},
    ]
    multi = [
        {"task": "multi_turn_add", "image_path": "turn2_add/a1.png", "input_image": image(121),
         "edited_image": image(122), "mask": image(0), "instruction": "add a vase", "caption": "vase"},
        {"task": "multi_turn_add", "image_path": "turn1_add/a1.png", "input_image": image(120),
         "edited_image": image(121), "mask": image(0), "instruction": "add a book", "caption": "book"},
    ]
    columns = {"input_image", "edited_image", "mask"}
    _to_parquet(train, root / "data" / "train-00000-of-00001.parquet", columns)
    _to_parquet(multi, root / "data" / "multi_turn-00000-of-00001.parquet", columns)
    return root


def write_gedit(root: Path) -> Path:
    """The hub layout of GEdit-Bench: ``data/train-*.parquet``, English and Chinese rows."""
    rows = [
        {"key": "k1", "task_type": "color_alter", "instruction": "Make the car red.", "instruction_language": "en",
         "input_image": image(130), "input_image_raw": image(131, (64, 48)), "Intersection_exist": True},
        {"key": "k1", "task_type": "color_alter", "instruction": "把车变成红色。", "instruction_language": "cn",
         "input_image": image(130), "input_image_raw": image(131, (64, 48)), "Intersection_exist": True},
        {"key": "k2", "task_type": "style_change", "instruction": "Turn it into a sketch.",
         "instruction_language": "en", "input_image": image(140), "input_image_raw": image(141, (64, 48)),
         "Intersection_exist": False},
    ]
    _to_parquet(rows, root / "data" / "train-00000-of-00001.parquet", {"input_image", "input_image_raw"})
    return root


def write_imgedit(root: Path) -> tuple[Path, Path, Path]:
    """ImgEdit's benchmark files (``Basic/basic_edit.json``, a multi-turn file) and the original images."""
    images = root / "original_images"
    (images / "animal").mkdir(parents=True, exist_ok=True)
    image(150).save(images / "animal" / "000342021.jpg", quality=95)
    image(160).save(images / "000066341.jpg", quality=95)
    basic = root / "Basic" / "basic_edit.json"
    basic.parent.mkdir(parents=True, exist_ok=True)
    basic.write_text(json.dumps({"1082": {"id": "animal/000342021.jpg", "prompt": "Change the shell to smooth.",
                                          "edit_type": "alter"}}), encoding="utf-8")
    multi = root / "Multiturn" / "content_memory.json"
    multi.parent.mkdir(parents=True, exist_ok=True)
    multi.write_text(json.dumps({"1": {"id": "000066341.jpg", "turn1": "Add embellishments to the plate",
                                       "turn2": "Replace the tomato with fruit", "turn3": "Change the plate's color"}}),
                     encoding="utf-8")
    return basic, multi, images
