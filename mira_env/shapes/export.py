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
from mira_env.shapes.noise import NOISE_KINDS, EditorNoise
from mira_env.shapes.scene import Scene
from mira_env.tasks.task import Task


class RetryBudgetError(TaskError):
    """A noisy export's retries of ignored edits do not fit in ``max_steps`` (the task is skipped)."""


def oracle_record(task: Task, editor: ShapesEditor | None = None, max_steps: int | None = None,
                  seed: int = 0) -> EditingRecord:
    """The task with its hidden program executed step by step (every intermediate image kept).

    With a noisy ``editor`` (``EditorNoise.ignore`` > 0, the only kind allowed) an ignored edit leaves the
    image unchanged and the oracle re-issues the same instruction, as a policy that looks at It would: the
    record keeps the failed attempt as a step of its own (``metadata["ignored_steps"]`` lists them). Raises
    :class:`RetryBudgetError` when the retries would take the trajectory over ``max_steps`` edits and a
    :class:`TaskError` when an edit is only partly applied. ``seed`` makes the editor's failures of this task
    (edit ``k`` of the trajectory uses seed ``seed * 1009 + k``).
    """
    editor = editor or ShapesEditor()
    noisy = editor.noise.active
    exact = ShapesEditor() if noisy else None  # the program's scenes, to see which attempts were ignored
    image = task.image
    steps, scenes, ignored = [], [], []
    expected = Scene.from_dict(task.metadata["scene"])
    for index, instruction in enumerate(task.atomic_instructions):
        if exact is not None:
            expected, _ = exact.execute(expected, instruction)
        while True:
            if max_steps is not None and len(steps) >= max_steps:
                raise RetryBudgetError(f"task {task.id!r}: the retries of ignored edits need more than "
                                       f"max_steps={max_steps} edits")
            (image,) = editor.edit([image], [instruction], [seed * 1009 + len(steps)])
            status = image.info.get("mira.edit_status") or {}
            if not status.get("ok", False):
                raise TaskError(f"task {task.id!r}: oracle step {index} {instruction!r} failed: "
                                f"{status.get('message')}")
            steps.append(TrajectoryStep(instruction=instruction, image=image))
            scenes.append(image.info[STATE_KEY])
            if exact is None or Scene.from_dict(scenes[-1]) == expected:
                break
            if status.get("changed", True):
                raise TaskError(f"task {task.id!r}: oracle step {index} {instruction!r} was only partly applied "
                                f"({status.get('noise')}); re-issuing it would not restore the program's scene")
            ignored.append(len(steps) - 1)
    final_scene = scenes[-1] if scenes else task.metadata["scene"]
    if final_scene != task.metadata["target_scene"]:
        raise TaskError(f"task {task.id!r}: the oracle trajectory does not reach the target scene")
    metadata = dict(task.metadata)
    metadata["step_scenes"] = scenes
    if noisy:
        metadata["ignored_steps"] = ignored
    return EditingRecord(id=task.id, complex_instruction=task.instruction, source_image=task.image,
                         trajectory=steps, variants=list(task.variants), final_image=image,
                         target_image=task.target_image, metadata=metadata)


def check_export_noise(noise: EditorNoise) -> EditorNoise:
    """``noise`` if only ``ignore`` is set, below 1: re-issuing the instruction is the oracle's correction of an ignored
    edit, while a wrong object or a drift needs a different, planned edit (play those with the replanning
    :class:`~mira_env.agents.baselines.ScriptedOracleAgent` instead)."""
    others = [name for name in NOISE_KINDS if name != "ignore" and getattr(noise, name) > 0]
    if others:
        raise ConfigError(f"export noise {others} is not supported: only 'ignore' (the oracle re-issues an ignored "
                          "edit) can be exported; set the other kinds to 0")
    if noise.ignore >= 1:
        raise ConfigError(f"export noise ignore={noise.ignore} never applies an edit, so the oracle would re-issue "
                          "it forever; use a probability below 1")
    return noise


def iter_oracle_records(generator: ShapesTaskGenerator, progress: bool = True, noise: EditorNoise | None = None,
                        max_steps: int | None = None, skipped: list[str] | None = None) -> Iterator[EditingRecord]:
    """Oracle records of every task of ``generator``, with a tqdm progress bar.

    ``noise`` (ignore only) exports trajectories with re-issued ignored edits (:func:`oracle_record`); tasks
    whose retries do not fit in ``max_steps`` are skipped and their ids appended to ``skipped``.
    """
    from tqdm.auto import tqdm

    editor = ShapesEditor(noise=check_export_noise(noise) if noise is not None else None)
    bar = tqdm(range(len(generator)), desc=f"export {generator.config.split}", unit="task", disable=not progress)
    for index in bar:
        task = generator[index]
        try:
            yield oracle_record(task, editor, max_steps=max_steps, seed=index)
        except RetryBudgetError:
            if skipped is None:
                raise
            skipped.append(task.id)
            bar.set_postfix(skipped=len(skipped))


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
