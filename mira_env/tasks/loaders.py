"""Task loaders: a JSONL file, an image folder with instructions, a Hugging Face ``datasets`` dataset.

JSONL record (one per line; ``image`` relative to the file's folder unless ``image_root`` is given)::

    {"id": "t1", "instruction": "make the sky pink and add a moon", "image": "images/t1.png",
     "target": "images/t1_target.png", "atomic_instructions": ["make the sky pink", "add a moon"],
     "variants": ["add a moon and turn the sky pink"]}

``complex_instruction`` is accepted for ``instruction`` and ``source_image`` for ``image`` (the
MIRA-Editing field names), and so are the field names of editing benchmarks (MagicBrush's ``img_id``
/ ``turn_index`` / ``source_img`` / ``target_img``); every other field lands in ``Task.metadata``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from mira_env.errors import TaskError, describe
from mira_env.jsonl import iter_jsonl
from mira_env.tasks.task import Task, TaskList, TaskSource

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
# Field names in order of preference: ours and MIRA-Editing's first, then those of editing benchmarks
# (MagicBrush: img_id / turn_index / source_img / target_img / instruction; CompBench-style dumps).
_INSTRUCTION_KEYS = ("instruction", "complex_instruction", "prompt", "edit", "edit_prompt", "edit_instruction",
                     "instruction_text", "text")
_IMAGE_KEYS = ("image", "source_image", "source", "input_image", "image_path", "source_img", "src_img",
               "input_img", "original_image", "original_img", "input")
_TARGET_KEYS = ("target", "target_image", "output_image", "target_img", "tgt_img", "edited_image", "edited_img",
                "output_img", "output")
_KNOWN = set(_INSTRUCTION_KEYS + _IMAGE_KEYS + _TARGET_KEYS + ("id", "atomic_instructions", "trajectory",
                                                               "variants", "final_image"))


def _first(record: Mapping[str, Any], keys: Sequence[str]) -> Any:
    for key in keys:
        if record.get(key) is not None:
            return record[key]
    return None


def _string_tuple(value: Any, name: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    # MIRA-Editing trajectories may hold dicts with an "instruction" field per step
    if isinstance(value, (list, tuple)) and all(isinstance(v, Mapping) and "instruction" in v for v in value):
        return tuple(str(v["instruction"]) for v in value)
    raise TaskError(f"{where}: field {name!r} must be a list of strings, got {describe(value)}")


def task_from_record(record: Mapping[str, Any], *, where: str, root: str | None,
                     default_id: str) -> Task:
    """Build a :class:`Task` from a dict record; errors name ``where`` (file and line)."""
    if not isinstance(record, Mapping):
        raise TaskError(f"{where}: expected a JSON object, got {describe(record)}")
    instruction = _first(record, _INSTRUCTION_KEYS)
    if not isinstance(instruction, str) or not instruction.strip():
        raise TaskError(f"{where}: missing instruction; give one of the fields {list(_INSTRUCTION_KEYS)} "
                        f"as a non-empty string")
    image = _first(record, _IMAGE_KEYS)
    from PIL import Image as PILImage

    image_obj = image if isinstance(image, PILImage.Image) else None
    if image_obj is None and not isinstance(image, str):
        raise TaskError(f"{where}: missing image; give one of the fields {list(_IMAGE_KEYS)} as a path")
    target = _first(record, _TARGET_KEYS)
    if target is None:
        target = record.get("final_image")
    task_id = record.get("id")
    if task_id is None and record.get("img_id") is not None:  # MagicBrush: one image, several turns
        turn = record.get("turn_index")
        task_id = f"{record['img_id']}" + (f"-t{turn}" if turn is not None else "")
    if task_id is None:
        task_id = default_id
    metadata = {k: v for k, v in record.items() if k not in _KNOWN}
    return Task(
        id=str(task_id),
        instruction=instruction,
        image=image_obj,
        image_path=None if image_obj is not None else image,
        root=root,
        target_image=target if isinstance(target, PILImage.Image) else None,
        target_path=target if isinstance(target, str) else None,
        atomic_instructions=_string_tuple(
            record.get("atomic_instructions", record.get("trajectory")), "atomic_instructions", where),
        variants=_string_tuple(record.get("variants"), "variants", where),
        metadata=metadata,
    )


def load_jsonl(path: str | os.PathLike, image_root: str | os.PathLike | None = None) -> TaskList:
    """Tasks from a JSONL file; image paths resolve inside ``image_root`` (default: the file's folder)."""
    file = Path(path)
    if not file.is_file():
        raise TaskError(f"task file {str(file)!r} does not exist")
    root = str(Path(image_root) if image_root is not None else file.parent)
    tasks = [task_from_record(record, where=where, root=root, default_id=f"{file.stem}-{number}")
             for number, where, record in iter_jsonl(file)]
    if not tasks:
        raise TaskError(f"task file {str(file)!r} holds no records")
    return TaskList(tasks)


def load_folder(path: str | os.PathLike) -> TaskList:
    """Tasks from an image folder.

    Instructions come from ``metadata.jsonl`` (the Hugging Face imagefolder convention: one record per
    image with ``file_name`` and ``instruction``) when present, else from a ``.txt`` file beside each
    image with the same stem. Images without an instruction raise :class:`TaskError` naming them.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise TaskError(f"task folder {str(folder)!r} does not exist")
    metadata = folder / "metadata.jsonl"
    if metadata.is_file():
        tasks = []
        for number, where, record in iter_jsonl(metadata):
            if "file_name" in record:
                record = {**record, "image": record["file_name"]}
                record.setdefault("id", Path(record["file_name"]).stem)
            tasks.append(task_from_record(record, where=where, root=str(folder), default_id=str(number)))
        return TaskList(tasks)
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise TaskError(f"task folder {str(folder)!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    tasks = []
    for image in images:
        sidecar = image.with_suffix(".txt")
        if not sidecar.is_file():
            raise TaskError(f"image {image.name!r} in {str(folder)!r} has no instruction: write it to "
                            f"{sidecar.name!r} or list it in metadata.jsonl")
        try:
            instruction = sidecar.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise TaskError(f"instruction file {str(sidecar)!r}: not UTF-8 text (byte at offset {exc.start}); "
                            f"save it as UTF-8") from None
        tasks.append(Task(id=image.stem, instruction=instruction.strip() or " ", image_path=image.name,
                          root=str(folder)))
    return TaskList(tasks)


def load_hf_dataset(path: str | os.PathLike, split: str | None = None, *, image_column: str | None = None,
                    instruction_column: str | None = None, id_column: str | None = None) -> TaskList:
    """Tasks from a Hugging Face ``datasets`` dataset saved on disk (``save_to_disk``) or a local data dir.

    Column names default to the first present of the usual names (``image``/``source_image``,
    ``instruction``/``complex_instruction``/``edit``, and benchmark names such as ``source_img``).
    Image columns may hold PIL images (the ``Image`` feature) or paths. ``split=None`` takes the only
    split, else ``test``, ``validation`` or ``train``.
    """
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise TaskError("loading a Hugging Face dataset needs the 'datasets' package: "
                        "pip install 'mira-env[datasets]'") from exc
    location = Path(path)
    if not location.exists():
        raise TaskError(f"dataset {str(location)!r} does not exist")
    try:
        if (location / "dataset_info.json").is_file() or (location / "dataset_dict.json").is_file():
            loaded = datasets.load_from_disk(str(location))
        else:
            loaded = datasets.load_dataset(str(location))
    except (OSError, ValueError, KeyError, TypeError, datasets.exceptions.DatasetGenerationError,
            FileNotFoundError) as exc:
        raise TaskError(f"dataset {str(location)!r} cannot be read as a Hugging Face dataset "
                        f"({type(exc).__name__}: {exc}); save it with Dataset.save_to_disk or pass a data "
                        f"folder that datasets.load_dataset reads") from exc
    if isinstance(loaded, datasets.DatasetDict):
        if split is None:  # the only split, else the evaluation split, else train
            split = next((name for name in ("test", "validation", "train") if name in loaded), next(iter(loaded)))
        if split not in loaded:
            raise TaskError(f"dataset {str(location)!r} has no split {split!r}; splits: {list(loaded)}")
        loaded = loaded[split]
    columns = set(loaded.column_names)

    def pick(given: str | None, candidates: Sequence[str], what: str) -> str:
        if given is not None:
            if given not in columns:
                raise TaskError(f"dataset {str(location)!r} has no {what} column {given!r}; columns: "
                                f"{sorted(columns)}")
            return given
        for name in candidates:
            if name in columns:
                return name
        raise TaskError(f"dataset {str(location)!r}: no {what} column among {sorted(columns)}; pass "
                        f"{what}_column=")

    image_col = pick(image_column, _IMAGE_KEYS, "image")
    instruction_col = pick(instruction_column, _INSTRUCTION_KEYS, "instruction")
    tasks = []
    root = str(location if location.is_dir() else location.parent)
    for index, row in enumerate(loaded):
        record = dict(row)
        record["image"] = record.pop(image_col)
        record["instruction"] = record.pop(instruction_col)
        if id_column is not None:
            record["id"] = record[id_column]
        if record.get("id") is None and record.get("img_id") is None:
            record["id"] = f"{location.name}-{split}-{index}"
        tasks.append(task_from_record(record, where=f"{location.name}[{split}][{index}]", root=root,
                                      default_id=str(index)))
    return TaskList(tasks)


def resolve_tasks(spec: Any) -> TaskSource:
    """Turn a user's ``tasks=`` argument into a :class:`TaskSource`.

    Accepts a task source (anything with ``__len__`` and ``__getitem__`` returning tasks), a list of
    :class:`Task`, a ``.jsonl`` path, a MIRA-Editing records folder (one holding ``records.jsonl``, as
    ``mira export`` and ``mira data build`` write), a folder of images, or a saved ``datasets`` folder.
    """
    if isinstance(spec, Task):
        return TaskList([spec])
    if isinstance(spec, (str, os.PathLike)):
        location = Path(spec)
        if location.is_file() and location.suffix in (".jsonl", ".json"):
            return load_jsonl(location)
        if location.is_dir():
            if (location / "dataset_info.json").is_file() or (location / "dataset_dict.json").is_file():
                return load_hf_dataset(location)
            if (location / "records.jsonl").is_file():
                return load_jsonl(location / "records.jsonl")
            return load_folder(location)
        raise TaskError(f"tasks={str(spec)!r}: not a .jsonl file or a folder")
    if isinstance(spec, (list, tuple)):
        return TaskList(spec)
    if isinstance(spec, TaskSource):
        if len(spec) == 0:
            raise TaskError("tasks= is an empty task source")
        return spec
    raise TaskError(f"tasks={describe(spec)}: expected a TaskSource, a list of Task, a .jsonl path or a folder")
