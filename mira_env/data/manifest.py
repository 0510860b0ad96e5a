"""Seeded evaluation manifests: which benchmark samples make an evaluation set, reproducibly.

A manifest (JSON; the shipped ones live in ``mira_env/data/manifests/``) names sources and a seed::

    {"name": "mira-eval-500", "seed": "mira-eval-500-v1",
     "sources": [{"benchmark": "magicbrush", "options": {"split": "test", "mode": "multi_turn"}, "count": 250},
                 {"benchmark": "compbench", "options": {"split": "train"}, "count": 250}]}

Each source is loaded with :func:`mira_env.tasks.benchmarks.load_benchmark` from the local copy the user
names, and its ``count`` tasks with the smallest ``sha256(f"{seed}:{benchmark}:{task id}")`` are
chosen: the choice depends on the seed and the ids only (not on file order or on the machine), so
anyone with the same release gets the same samples. A source may instead list ``"ids"`` (a frozen
manifest, as :func:`freeze` writes): exactly those tasks are taken.

:func:`write_eval_set` writes the chosen tasks as a task JSONL with images (``tasks.jsonl`` +
``images/``), which ``mira eval --task_file`` and ``mira run --task_file`` read::

    python -m mira_env.data.manifest --manifest mira_eval_500 --path magicbrush=MagicBrush \\
        --path compbench=CompBench --out evalsets/mira-eval-500
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Mapping

from mira_env.errors import TaskError, describe
from mira_env.tasks.files import read_json
from mira_env.tasks.task import Task, TaskList
from mira_env.validate import check_int

MANIFEST_DIR = Path(__file__).parent / "manifests"
DEFAULT_MANIFEST = "mira_eval_500"


def load_manifest(spec: str | os.PathLike | Mapping[str, Any] = DEFAULT_MANIFEST) -> dict:
    """A manifest: a mapping, a JSON file path, or the name of a shipped one (``mira_eval_500``)."""
    if isinstance(spec, Mapping):
        data = dict(spec)
        where = "manifest"
    else:
        path = Path(spec)
        if not path.is_file():
            path = MANIFEST_DIR / f"{spec}.json"
        if not path.is_file():
            shipped = sorted(p.stem for p in MANIFEST_DIR.glob("*.json"))
            raise TaskError(f"manifest {str(spec)!r} is neither a file nor a shipped manifest; shipped: {shipped}")
        data = read_json(path, dict, "a manifest object {seed, sources}")
        where = str(path)
    if not isinstance(data.get("seed"), str) or not isinstance(data.get("sources"), list) or not data["sources"]:
        raise TaskError(f"{where}: a manifest needs a string 'seed' and a non-empty 'sources' list")
    for index, source in enumerate(data["sources"]):
        if not isinstance(source, Mapping) or not isinstance(source.get("benchmark"), str):
            raise TaskError(f"{where}: sources[{index}] needs a 'benchmark' name, got {describe(source)}")
        if "ids" not in source:
            check_int(f"{where}: sources[{index}] count", source.get("count"), error=TaskError, hint="or give an 'ids' list")
    return data


def rank_key(seed: str, benchmark: str, task_id: str) -> str:
    return hashlib.sha256(f"{seed}:{benchmark}:{task_id}".encode()).hexdigest()


def select(manifest: Mapping[str, Any] | str, paths: Mapping[str, str | os.PathLike], *,
           allow_fewer: bool = False) -> TaskList:
    """The manifest's tasks from the local benchmark copies ``paths`` (benchmark name -> path), in manifest order.

    A source with fewer tasks than its ``count`` raises (the local copy is not the release the manifest
    was made for) unless ``allow_fewer``; frozen ``ids`` that are missing always raise.
    """
    from mira_env.tasks.benchmarks import load_benchmark

    data = load_manifest(manifest)
    chosen: list[Task] = []
    for source in data["sources"]:
        name = source["benchmark"]
        if name not in paths:
            raise TaskError(f"manifest {data.get('name', '')!r} needs a local copy of {name!r}: pass {name}=PATH "
                            f"(given: {sorted(paths)})")
        tasks = load_benchmark(name, paths[name], **dict(source.get("options") or {}))
        if "ids" in source:
            by_id = {task.id: task for task in tasks}
            missing = [i for i in source["ids"] if i not in by_id]
            if missing:
                raise TaskError(f"{name} at {str(paths[name])!r} lacks {len(missing)} of the manifest's ids (first: "
                                f"{missing[:3]}); is it the release docs/benchmarks.md names?")
            chosen.extend(by_id[i] for i in source["ids"])
            continue
        ranked = sorted(tasks, key=lambda task: rank_key(data["seed"], name, task.id))
        if len(ranked) < source["count"] and not allow_fewer:
            raise TaskError(f"{name} at {str(paths[name])!r} has {len(ranked)} tasks, fewer than the manifest's "
                            f"{source['count']}; use the full release, or allow fewer (--allow-fewer, "
                            "allow_fewer=True) for a smoke run")
        chosen.extend(ranked[: source["count"]])
    return TaskList(chosen)


def freeze(manifest: Mapping[str, Any] | str, tasks: TaskList) -> dict:
    """A copy of ``manifest`` whose sources list the chosen ``ids`` (so later releases cannot change it)."""
    data = load_manifest(manifest)
    sources = []
    for source in data["sources"]:
        ids = [t.id for t in tasks if (t.metadata or {}).get("benchmark") == source["benchmark"]]
        sources.append({**source, "ids": ids})
    return {**data, "sources": sources}


def write_eval_set(tasks: TaskList, out: str | os.PathLike) -> Path:
    """``tasks`` as ``out/tasks.jsonl`` + ``out/images/`` (source and target PNGs); returns the JSONL path."""
    folder = Path(out)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for task in tasks:
        stem = hashlib.sha256(task.id.encode()).hexdigest()[:16]
        row: dict[str, Any] = {"id": task.id, "instruction": task.instruction, "image": f"images/{stem}_source.png"}
        task.load_source().save(folder / row["image"], format="PNG")
        target = task.load_target()
        if target is not None:
            row["target"] = f"images/{stem}_target.png"
            target.save(folder / row["target"], format="PNG")
        if task.atomic_instructions:
            row["atomic_instructions"] = list(task.atomic_instructions)
        row.update({k: v for k, v in dict(task.metadata or {}).items() if k not in row})
        lines.append(json.dumps(row, ensure_ascii=False))
    path = folder / "tasks.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mira_env.data.manifest",
                                     description="materialise an evaluation manifest as a task file with images")
    parser.add_argument("--manifest", default=DEFAULT_MANIFEST, help="shipped manifest name or JSON file")
    parser.add_argument("--path", action="append", default=[], metavar="NAME=PATH", required=True,
                        help="local copy of a benchmark the manifest names (repeatable)")
    parser.add_argument("--out", required=True, help="output folder (tasks.jsonl, images/, manifest.json)")
    parser.add_argument("--allow-fewer", action="store_true", help="accept sources smaller than their count")
    args = parser.parse_args(argv)
    try:
        paths = dict(spec.split("=", 1) for spec in args.path)
        manifest = load_manifest(args.manifest)
        tasks = select(manifest, paths, allow_fewer=args.allow_fewer)
        path = write_eval_set(tasks, args.out)
        (Path(args.out) / "manifest.json").write_text(json.dumps(freeze(manifest, tasks), indent=1), encoding="utf-8")
    except (TaskError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(tasks)} tasks: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
