"""Loaders for local copies of editing benchmarks, in their published layouts (nothing is downloaded).

The user downloads each benchmark; these functions read the files as published. ``docs/benchmarks.md``
names the release followed and the fields used.

- **MagicBrush** (Zhang et al., NeurIPS 2023; github.com/OSU-NLP-Group/MagicBrush):
  - the original JSON release: a folder with ``edit_sessions.json`` (``{img_id: [{"input", "mask",
    "output", "instruction"}, ...]}``, turns in order) and ``images/<img_id>/<file>``; the ``test/``
    folder of the release zip is the multi-turn test split (a parent folder holding ``test/`` works too);
  - the hub parquet (``osunlp/MagicBrush``: ``data/{train,dev}-*.parquet`` with ``img_id``,
    ``turn_index``, ``source_img``, ``mask_img``, ``instruction``, ``target_img``).
  :func:`load_magicbrush` gives one task per session (``mode="multi_turn"``: the turns merged in order
  into C, the first input as I0, the last output as target) or per turn (``mode="turns"``).
- **CompBench** (Jia et al., arXiv 2505.12200; hub ``BohanJia/CompBench``): ``data/train-*.parquet`` and
  ``data/multi_turn-*.parquet`` with ``task``, ``image_path``, ``input_image``, ``edited_image``, ``mask``,
  ``instruction``, ``caption``; multi-turn rows are ``turn1_<kind>/<name>`` / ``turn2_<kind>/<name>``.
- **GEdit-Bench** (Liu et al., Step1X-Edit; hub ``stepfun-ai/GEdit-Bench``): ``data/train-*.parquet`` with
  ``key``, ``task_type``, ``instruction``, ``instruction_language`` (``en`` / ``cn``), ``input_image``,
  ``input_image_raw``, ``Intersection_exist``. No targets (judged by VIEScore).
- **ImgEdit** (Ye et al., PKU-YuanGroup/ImgEdit): the benchmark JSON files (``Basic/basic_edit.json``,
  ``UGE/UGE_edit.json``: ``{key: {"id": <image path under the image root>, "prompt", "edit_type"?}}``;
  multi-turn files: ``{key: {"id", "turn1", "turn2", ...}}``) and the folder of original images.

Every loader returns a :class:`~mira_env.tasks.task.TaskList` whose task ids are prefixed with the
benchmark name (``magicbrush-<img_id>``, ``compbench-<task>-<image_path>``, ``gedit-<lang>-<key>``,
``imgedit-<key>``); ``metadata["benchmark"]`` names the benchmark. Parquet images stay encoded in
memory and decode when a task loads its image.
"""

from __future__ import annotations

import functools
import io
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from PIL import Image

from mira_env.errors import TaskError, describe
from mira_env.tasks.files import read_json
from mira_env.tasks.task import Task, TaskList
from mira_env.validate import check_choice

MAGICBRUSH_MODES = ("multi_turn", "turns")


# ----------------------------------------------------------------------------- parquet helpers
def parquet_files(path: str | os.PathLike, split: str | None, *, quiet: bool = False) -> list[Path]:
    """The parquet files of ``split`` under ``path`` (a file, a dataset folder, or its ``data/`` folder).

    Hub file names start with the split (``train-00000-of-00002.parquet``); with ``split=None`` every
    parquet file is taken. ``quiet=True`` returns ``[]`` instead of raising when there is none.
    """
    location = Path(path)
    if location.is_file():
        return [location] if location.suffix == ".parquet" else []
    if not location.is_dir():
        if quiet:
            return []
        raise TaskError(f"benchmark path {str(location)!r} does not exist")
    files = sorted(location.rglob("*.parquet"))
    if split is not None:
        files = [f for f in files if f.name.startswith((f"{split}-", f"{split}.", f"{split}_")) or f.parent.name == split]
    if not files and not quiet:
        found = sorted({f.name.split("-")[0] for f in location.rglob("*.parquet")})
        raise TaskError(f"no parquet files for split {split!r} under {str(location)!r}"
                        + (f"; splits found: {found}" if found else "; the folder holds no .parquet files"))
    return files


@functools.lru_cache(maxsize=4)
def row_group_column(file: str, group: int, column: str) -> list:
    """One column of one row group of a parquet file, as Python values (the last few are cached)."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(file).read_row_group(group, columns=[column]).column(column).to_pylist()


def read_parquet_rows_lazily(path: str | os.PathLike, split: str | None, image_columns: Sequence[str]
                             ) -> list[tuple[str, dict]]:
    """``(where, row)`` for every row of the split's parquet files; the ``image_columns`` are NOT read: each cell is a loader that
    reads its row group's column when called (the last few are cached), so a large split (MagicBrush
    train is about 10 GB of images) is never held in memory."""
    import pyarrow.parquet as pq

    rows = []
    for file in parquet_files(path, split):
        handle = pq.ParquetFile(file)
        names = [n for n in handle.schema_arrow.names if n not in image_columns]
        offset = 0
        for group in range(handle.num_row_groups):
            for index, row in enumerate(handle.read_row_group(group, columns=names).to_pylist()):
                where = f"{file.name}[{offset + index}]"
                for column in image_columns:
                    if column in handle.schema_arrow.names:
                        row[column] = functools.partial(_lazy_cell, str(file), group, index, column, where)
                rows.append((where, row))
            offset += handle.metadata.row_group(group).num_rows
    return rows


def _lazy_cell(file: str, group: int, index: int, column: str, where: str) -> Image.Image:
    return parquet_image(row_group_column(file, group, column)[index], where, column)


def parquet_image(value: Any, where: str, column: str) -> Image.Image:
    """A hub ``Image`` cell (``{"bytes": ..., "path": ...}``) as a lazily decoded PIL image."""
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, Mapping) and value.get("bytes"):
        try:
            return Image.open(io.BytesIO(value["bytes"]))
        except Exception as exc:  # PIL raises several types for a corrupt file
            raise TaskError(f"{where}: column {column!r} holds bytes that are not an image ({exc})") from exc
    if isinstance(value, (bytes, bytearray)) and value:
        return Image.open(io.BytesIO(bytes(value)))
    raise TaskError(f"{where}: column {column!r} must hold an image, got {describe(value)}")


def _require(row: Mapping[str, Any], names: Sequence[str], where: str, benchmark: str) -> None:
    missing = [name for name in names if name not in row]
    if missing:
        raise TaskError(f"{where}: {benchmark} rows need the column(s) {missing}; the row has {sorted(row)}. "
                        f"Is this the {benchmark} release described in docs/benchmarks.md?")


def _merged(turns: Sequence[str]) -> str:
    from mira_env.data.merge import merge_ordered

    return merge_ordered(turns)


# ----------------------------------------------------------------------------- MagicBrush
def _magicbrush_release_dir(location: Path, split: str | None) -> Path | None:
    if (location / "edit_sessions.json").is_file():
        return location
    for name in ([split] if split else []) + ["test", "dev", "train"]:
        if (location / name / "edit_sessions.json").is_file():
            return location / name
    return None


def _magicbrush_json_sessions(folder: Path):
    from mira_env.sessions import EditingSession, SessionStep

    path = folder / "edit_sessions.json"
    data = read_json(path, dict, "an object {img_id: [turns]}")
    sessions = []
    for img_id, turns in data.items():
        where = f"{path.name}[{img_id!r}]"
        if not isinstance(turns, list) or not turns:
            raise TaskError(f"{where}: expected a non-empty list of turns, got {describe(turns)}")
        steps = []
        for number, turn in enumerate(turns, start=1):
            if not isinstance(turn, Mapping):
                raise TaskError(f"{where} turn {number}: expected an object, got {describe(turn)}")
            _require(turn, ("input", "output", "instruction"), f"{where} turn {number}", "MagicBrush")
            steps.append(SessionStep(str(turn["instruction"]), image_path=f"images/{img_id}/{turn['output']}",
                                     root=str(folder)))
        sessions.append(EditingSession(id=str(img_id), turns=steps, source_path=f"images/{img_id}/{turns[0]['input']}",
                                       root=str(folder), metadata={"source": "magicbrush",
                                                                   "masks": [t.get("mask") for t in turns]}))
    return sessions


def magicbrush_sessions(path: str | os.PathLike, split: str | None = None) -> list:
    """MagicBrush edit sessions (:class:`~mira_env.sessions.EditingSession`) from the JSON release or the parquet.

    ``split``: the release subfolder (``test`` by default when several are present) or the parquet
    split (``train`` / ``dev``; ``None`` reads every parquet file).
    """
    from mira_env.sessions import sessions_from_turn_rows

    location = Path(path)
    release = _magicbrush_release_dir(location, split) if location.is_dir() else None
    if release is not None:
        return _magicbrush_json_sessions(release)
    if not parquet_files(location, None, quiet=True):
        raise TaskError(f"{str(location)!r} is neither a MagicBrush JSON release folder (edit_sessions.json + "
                        "images/) nor a MagicBrush parquet file or folder")
    rows = read_parquet_rows_lazily(location, split, ("source_img", "target_img", "mask_img"))
    for where, row in rows:
        _require(row, ("img_id", "turn_index", "source_img", "instruction", "target_img"), where, "MagicBrush")
    return sessions_from_turn_rows(rows, root=None)


def load_magicbrush(path: str | os.PathLike, split: str | None = None, mode: str = "multi_turn") -> TaskList:
    """MagicBrush as tasks: one per session (``mode="multi_turn"``) or one per turn (``mode="turns"``).

    Multi-turn task: I0 = the first turn's input, C = the turns merged in order, target = the last
    turn's ground-truth output, ``atomic_instructions`` = the turns. Per-turn task (the single-turn
    setting): I0 = that turn's ground-truth input, C = its instruction, target = its output.
    """
    check_choice("mode", mode, MAGICBRUSH_MODES, error=TaskError)
    tasks = []
    for session in magicbrush_sessions(path, split):
        meta = {"benchmark": "magicbrush", "img_id": session.id, "num_turns": len(session.turns)}
        # parquet cells: the loader gives a lazily decoded image (its PNG bytes only, until used)
        source = session.source_image or (session.source_loader() if session.source_loader else None)
        targets = [turn.image or (turn.image_loader() if turn.image_loader else None) for turn in session.turns]
        last = session.turns[-1]
        if mode == "multi_turn":
            tasks.append(Task(id=f"magicbrush-{session.id}", instruction=_merged(session.instructions),
                              image=source, image_path=session.source_path, root=session.root,
                              target_image=targets[-1], target_path=last.image_path,
                              atomic_instructions=tuple(session.instructions), metadata=meta))
            continue
        previous_image, previous_path = source, session.source_path
        for number, turn in enumerate(session.turns, start=1):
            tasks.append(Task(id=f"magicbrush-{session.id}-t{number}", instruction=session.instructions[number - 1],
                              image=previous_image, image_path=previous_path, root=session.root,
                              target_image=targets[number - 1], target_path=turn.image_path,
                              metadata={**meta, "turn": number}))
            previous_image, previous_path = targets[number - 1], turn.image_path
    return _task_list(tasks, path, "MagicBrush")


# ----------------------------------------------------------------------------- CompBench
COMPBENCH_COLUMNS = ("task", "image_path", "input_image", "edited_image", "instruction")


def load_compbench(path: str | os.PathLike, split: str = "train", tasks: Sequence[str] | None = None) -> TaskList:
    """CompBench from its hub parquet. ``split="train"``: one task per row; ``split="multi_turn"``: the
    ``turn1_<kind>`` / ``turn2_<kind>`` rows of one image merged into one two-turn task (C = both
    instructions in order, target = the turn-2 output). ``tasks`` keeps only those CompBench task names."""
    rows = read_parquet_rows_lazily(path, split, ("input_image", "edited_image", "mask"))  # masks are never read
    for where, row in rows:
        _require(row, COMPBENCH_COLUMNS, where, "CompBench")
    wanted = None if tasks is None else set(tasks)
    out = []
    if split != "multi_turn":
        for _where, row in rows:
            if wanted is not None and row["task"] not in wanted:
                continue
            out.append(Task(id=f"compbench-{row['task']}-{row['image_path']}", instruction=str(row["instruction"]),
                            image=row["input_image"](), target_image=row["edited_image"](),
                            metadata={"benchmark": "compbench", "task": row["task"], "image_path": row["image_path"],
                                      "caption": row.get("caption")}))
        return _task_list(out, path, "CompBench")
    grouped: dict[tuple[str, str], dict[int, tuple[str, dict]]] = defaultdict(dict)
    for where, row in rows:
        if wanted is not None and row["task"] not in wanted:
            continue
        prefix, _, name = str(row["image_path"]).partition("/")
        if not prefix.startswith("turn") or not name:
            raise TaskError(f"{where}: multi_turn image_path {row['image_path']!r} is not 'turn<N>_<kind>/<name>'")
        number = int(prefix[4:].split("_", 1)[0])
        grouped[(str(row["task"]), name)][number] = (where, row)
    for (task_name, name), turns in sorted(grouped.items()):
        numbers = sorted(turns)
        if numbers != list(range(1, len(numbers) + 1)):
            raise TaskError(f"CompBench {task_name} {name!r}: turns {numbers} are not 1..n")
        first, last = turns[1][1], turns[numbers[-1]][1]
        instructions = [str(turns[n][1]["instruction"]) for n in numbers]
        out.append(Task(id=f"compbench-{task_name}-{name}", instruction=_merged(instructions),
                        image=first["input_image"](), target_image=last["edited_image"](),
                        atomic_instructions=tuple(instructions),
                        metadata={"benchmark": "compbench", "task": task_name, "image_path": name,
                                  "num_turns": len(numbers)}))
    return _task_list(out, path, "CompBench")


# ----------------------------------------------------------------------------- GEdit-Bench
GEDIT_LANGUAGES = ("en", "cn")


def load_gedit_bench(path: str | os.PathLike, language: str = "en", split: str = "train",
                     raw_input: bool = False) -> TaskList:
    """GEdit-Bench from its hub parquet: the rows of ``language`` (``en`` or ``cn``), I0 = ``input_image``
    (``raw_input=True``: ``input_image_raw``, the unresized original). No targets."""
    check_choice("language", language, GEDIT_LANGUAGES, error=TaskError)
    column = "input_image_raw" if raw_input else "input_image"
    out = []
    for where, row in read_parquet_rows_lazily(path, split, ("input_image", "input_image_raw")):
        _require(row, ("key", "task_type", "instruction", "instruction_language", column), where, "GEdit-Bench")
        if row["instruction_language"] != language:
            continue
        intersection = row.get("Intersection_exist", row.get("intersection_exist"))
        out.append(Task(id=f"gedit-{language}-{row['key']}", instruction=str(row["instruction"]),
                        image=row[column](),
                        metadata={"benchmark": "gedit", "key": row["key"], "task_type": row["task_type"],
                                  "language": language, "intersection_exist": intersection}))
    return _task_list(out, path, f"GEdit-Bench ({language})")


# ----------------------------------------------------------------------------- ImgEdit
def load_imgedit(path: str | os.PathLike, image_root: str | os.PathLike | None = None) -> TaskList:
    """ImgEdit from one benchmark JSON file and its folder of original images (default: the file's folder).

    Single-turn files (``{key: {"id", "prompt", "edit_type"?}}``) give one task per key; multi-turn
    files (``{key: {"id", "turn1", "turn2", ...}}``) give a task whose C merges the turns in order and
    whose ``atomic_instructions`` are the turns. ImgEdit publishes no target images.
    """
    file = Path(path)
    if not file.is_file():
        raise TaskError(f"ImgEdit benchmark file {str(file)!r} does not exist")
    data = read_json(file, dict, "an object {key: {id, prompt}}", where=file.name)
    root = str(Path(image_root) if image_root is not None else file.parent)
    out = []
    for key, item in data.items():
        where = f"{file.name}[{key!r}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
            raise TaskError(f"{where}: expected an object with a string 'id' (the image path), got {describe(item)}")
        turn_keys = sorted((k for k in item if k.startswith("turn") and k[4:].isdigit()), key=lambda k: int(k[4:]))
        meta = {"benchmark": "imgedit", "key": key, "edit_type": item.get("edit_type"), "file": file.name}
        if turn_keys:
            turns = [str(item[k]) for k in turn_keys]
            out.append(Task(id=f"imgedit-{key}", instruction=_merged(turns), image_path=item["id"], root=root,
                            atomic_instructions=tuple(turns), metadata={**meta, "num_turns": len(turns)}))
        elif isinstance(item.get("prompt"), str):
            out.append(Task(id=f"imgedit-{key}", instruction=item["prompt"], image_path=item["id"], root=root,
                            metadata=meta))
        else:
            raise TaskError(f"{where}: needs a 'prompt' (single-turn) or 'turn1', 'turn2', ... (multi-turn); "
                            f"it has {sorted(item)}")
    return _task_list(out, path, "ImgEdit")


def _task_list(tasks: list[Task], path: Any, name: str) -> TaskList:
    if not tasks:
        raise TaskError(f"{name} at {str(path)!r}: no tasks selected")
    return TaskList(tasks)


#: benchmark name -> loader(path, **options)
BENCHMARKS: dict[str, Callable[..., TaskList]] = {
    "magicbrush": load_magicbrush,
    "compbench": load_compbench,
    "gedit": load_gedit_bench,
    "imgedit": load_imgedit,
}


def load_benchmark(name: str, path: str | os.PathLike, **options: Any) -> TaskList:
    """``BENCHMARKS[name](path, **options)`` with an error listing the names."""
    if name not in BENCHMARKS:
        raise TaskError(f"unknown benchmark {name!r}; known: {sorted(BENCHMARKS)}")
    return BENCHMARKS[name](path, **options)
