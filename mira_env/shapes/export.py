"""``mira export``: generated shapes-world tasks with their oracle trajectories as MIRA-Editing records.

Each task's hidden program is executed by an exact :class:`ShapesEditor`; every intermediate image is
kept. Output: ``<out>/records.jsonl`` plus PNGs (read back with :func:`mira_env.records.read_records`
or as tasks with :func:`mira_env.tasks.load_jsonl`), and optionally a Hugging Face ``datasets``
dataset saved with ``save_to_disk`` (``--hf_out``; loads with :func:`mira_env.tasks.load_hf_dataset`)::

    mira export --out data/shapes-test --split test --num_tasks 500
    mira export --out data/shapes-train --split train --num_tasks 2000 --hf_out data/shapes-train-hf

The command's flags live in :mod:`mira_env.train.commands.export`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from mira_env.editors.base import STATE_KEY
from mira_env.errors import ConfigError, TaskError
from mira_env.records import EditingRecord, TrajectoryStep
from mira_env.shapes.editor import ShapesEditor
from mira_env.shapes.generator import ShapesTaskGenerator
from mira_env.tasks.task import Task


def oracle_record(task: Task, editor: ShapesEditor | None = None) -> EditingRecord:
    """The task with its hidden program executed step by step (every intermediate image kept)."""
    editor = editor or ShapesEditor()
    image = task.image
    steps, scenes = [], []
    for index, instruction in enumerate(task.atomic_instructions):
        (image,) = editor.edit([image], [instruction], [index])
        status = image.info.get("mira.edit_status") or {}
        if not status.get("ok", False):
            raise TaskError(f"task {task.id!r}: oracle step {index} {instruction!r} failed: {status.get('message')}")
        steps.append(TrajectoryStep(instruction=instruction, image=image))
        scenes.append(image.info[STATE_KEY])
    final_scene = scenes[-1] if scenes else task.metadata["scene"]
    if final_scene != task.metadata["target_scene"]:
        raise TaskError(f"task {task.id!r}: the oracle trajectory does not reach the target scene")
    metadata = dict(task.metadata)
    metadata["step_scenes"] = scenes
    return EditingRecord(id=task.id, complex_instruction=task.instruction, source_image=task.image,
                         trajectory=steps, variants=list(task.variants), final_image=image,
                         target_image=task.target_image, metadata=metadata)


def iter_oracle_records(generator: ShapesTaskGenerator, progress: bool = True) -> Iterator[EditingRecord]:
    """Oracle records of every task of ``generator``, with a tqdm progress bar."""
    from tqdm.auto import tqdm

    editor = ShapesEditor()
    for index in tqdm(range(len(generator)), desc=f"export {generator.config.split}", unit="task",
                      disable=not progress):
        yield oracle_record(generator[index], editor)


def save_hf_dataset(records_folder: str | Path, out: str | Path) -> Path:
    """Save the records of ``records_folder`` as a ``datasets`` dataset (``save_to_disk``) at ``out``."""
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError("--hf_out needs the 'datasets' package: pip install 'mira-env[datasets]'") from exc
    from mira_env.records import read_records

    records = read_records(records_folder)
    features = datasets.Features({
        "id": datasets.Value("string"), "source_image": datasets.Image(),
        "complex_instruction": datasets.Value("string"), "variants": datasets.Sequence(datasets.Value("string")),
        "atomic_instructions": datasets.Sequence(datasets.Value("string")),
        "step_images": datasets.Sequence(datasets.Image()), "target_image": datasets.Image(),
        "difficulty": datasets.Value("int32"), "split": datasets.Value("string"),
        "scene": datasets.Value("string"), "target_scene": datasets.Value("string"),
        "program": datasets.Value("string"),
    })

    def rows():
        for record in records:
            yield {"id": record.id, "source_image": record.load_source(),
                   "complex_instruction": record.complex_instruction, "variants": list(record.variants),
                   "atomic_instructions": [step.instruction for step in record.trajectory],
                   "step_images": [record.load_step_image(i) for i in range(len(record.trajectory))],
                   "target_image": record.load_target(), "difficulty": int(record.metadata.get("difficulty", 0)),
                   "split": str(record.metadata.get("split", "")),
                   "scene": json.dumps(record.metadata.get("scene")),
                   "target_scene": json.dumps(record.metadata.get("target_scene")),
                   "program": json.dumps(record.metadata.get("program"))}

    dataset = datasets.Dataset.from_list(list(rows()), features=features)
    dataset.save_to_disk(str(out))
    return Path(out)
