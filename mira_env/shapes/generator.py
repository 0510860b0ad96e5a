"""The shapes-world task generator: a seeded, reproducible :class:`~mira_env.tasks.TaskSource`.

A task is a random source scene plus a hidden program of 2 to 5 atomic edits; the complex
instruction composes them (in order or reordered, with pronouns and referring expressions that only
make sense after the earlier edits), the target scene is the result of executing the program.

Task ``i`` is a pure function of ``(config, i)``: its own random stream is seeded from the generator
seed, the split, the difficulty and ``i`` (never from other tasks), so any task is reached in O(1), in
any order, in any process. Drawing never raises: a draw that does not make a valid task (a scene of
another split, a program whose atomic instructions do not parse to exactly one reading or do not
execute to the recorded scenes) is redrawn from the same stream.

Splits are disjoint by construction: a source scene belongs to exactly one split, decided by a hash
of its content (80% train, 10% validation, 10% test), so no test source scene is ever seen in
training. Tasks are drawn independently, so a split holds a duplicate (same source scene and
program) only as often as the distribution implies: measured 0 duplicates in the first 5000 train and
the first 2000 validation / test tasks, mixed and difficulty 1 (tests check the first 1000 of each split).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

from mira_env.errors import ConfigError, TaskError, choice_error, describe
from mira_env.shapes.execute import EditFailure, apply_op, apply_to
from mira_env.shapes.grammar import PHRASINGS, Op, ParseError, parse_instruction, parse_ref, phrase, phrasing_key
from mira_env.shapes.refer import location_ref, refer
from mira_env.shapes.render import render_image, resolution_hw
from mira_env.shapes.scene import BACKGROUNDS, CELLS, COLORS, DIRECTIONS, GRID, SHAPES, SIZES, Obj, Scene
from mira_env.tasks.task import Task
from mira_env.validate import check_int, check_ints

#: the version of the task stream: tasks of another version differ at every index (run folders record it)
GENERATOR_VERSION = "mira-shapes/v3"
#: the seed prefix of every task's random stream: v3 kept v2's scenes, programs and instructions and changed only
#: the atomic instructions (now the clauses of the complex instruction), so it kept v2's stream
_STREAM = "mira-shapes/v2"
SPLITS = ("train", "validation", "test")
SPLIT_BUCKETS = {"train": range(0, 8), "validation": range(8, 9), "test": range(9, 10)}
DEFAULT_NUM_TASKS = {"train": 2000, "validation": 500, "test": 500}
DIFFICULTIES = (1, 2, 3)
#: per difficulty: number of edits, referring-expression kinds, pronoun and reordering probabilities
LEVELS = {
    1: {"edits": (2,), "refs": {"attribute": 1.0}, "pronoun": 0.0, "reorder": 0.0, "dependent": 0.0},
    2: {"edits": (3,), "refs": {"attribute": 0.5, "superlative": 0.2, "relation": 0.2, "location": 0.1},
        "pronoun": 0.5, "reorder": 0.3, "dependent": 0.4},
    3: {"edits": (4, 5), "refs": {"attribute": 0.3, "superlative": 0.3, "relation": 0.3, "location": 0.1},
        "pronoun": 0.8, "reorder": 0.5, "dependent": 0.7},
}
_OP_WEIGHTS = {"add": 1.0, "remove": 0.8, "recolor": 1.5, "move": 1.2, "resize": 1.0, "replace": 1.0,
               "background": 0.4}


def split_of(scene: Scene) -> str:
    """The split a source scene belongs to (a content hash, stable across processes and machines)."""
    digest = hashlib.blake2b(json.dumps(scene.to_dict(), sort_keys=True).encode(), digest_size=8).digest()
    bucket = int.from_bytes(digest, "big") % 10
    return next(name for name, buckets in SPLIT_BUCKETS.items() if bucket in buckets)


@dataclass
class ShapesTaskConfig:
    """What the generator produces."""

    split: str = field(default="train", metadata={"help": "Which split: 'train', 'validation' or 'test'."})
    num_tasks: int | None = field(default=None, metadata={
        "help": "Number of tasks; default 2000 for train, 500 for validation and test."})
    difficulty: int | None = field(default=None, metadata={
        "help": "1 (two edits, attribute references, in order), 2 (three edits, relations, superlatives, "
                "pronouns, some reordering), 3 (four or five edits, mostly context-dependent); None mixes all."})
    seed: int = field(default=0, metadata={"help": "Generator seed; the same seed gives the same tasks."})
    resolution: Any = field(default=128, metadata={"help": "Image size: an int (square) or (height, width)."})
    min_objects: int = field(default=2, metadata={"help": "Fewest objects in a source scene."})
    max_objects: int = field(default=6, metadata={"help": "Most objects in a source scene (at most 9)."})
    num_variants: int = field(default=3, metadata={"help": "Paraphrases of the complex instruction per task."})

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise choice_error("split", self.split, SPLITS)
        if self.num_tasks is None:
            self.num_tasks = DEFAULT_NUM_TASKS[self.split]
        check_ints(self, ("num_tasks", "min_objects", "max_objects"))
        check_int("num_variants", self.num_variants, minimum=0)
        if self.difficulty is not None and self.difficulty not in DIFFICULTIES:
            raise ConfigError(f"difficulty={describe(self.difficulty)} must be None (mixed) or one of 1, 2, 3")
        check_int("seed", self.seed, minimum=0)
        if not self.min_objects <= self.max_objects <= GRID * GRID:
            raise ConfigError(f"min_objects={self.min_objects} and max_objects={self.max_objects} must satisfy "
                              f"1 <= min_objects <= max_objects <= {GRID * GRID}")
        resolution_hw(self.resolution)


class TaskSpec(NamedTuple):
    """A generated task before rendering."""

    scene: Scene
    ops: tuple[Op, ...]
    atomic: tuple[str, ...]
    scenes: tuple[Scene, ...]       # after each op
    instruction: str
    variants: tuple[str, ...]
    difficulty: int
    ref_kinds: tuple[str, ...]


def _weighted(rng: random.Random, weights: dict[str, float]) -> str:
    names = list(weights)
    return rng.choices(names, weights=[weights[n] for n in names])[0]


def random_scene(rng: random.Random, min_objects: int = 2, max_objects: int = 6) -> Scene:
    """A uniformly random scene: background, object count, cells and attributes."""
    count = rng.randint(min_objects, max_objects)
    cells = rng.sample(CELLS, count)
    return Scene.make(rng.choice(BACKGROUNDS), [Obj(rng.choice(SHAPES), rng.choice(COLORS), rng.choice(SIZES), *cell)
                                                for cell in cells])


class _Step(NamedTuple):
    op: Op
    ref_text: str | None
    ref_kind: str | None
    target_uid: int | None
    after: Scene
    uids: dict


def _random_op(rng: random.Random, scene: Scene, uids: dict, level: dict, last_uid: int | None
               ) -> _Step | None:
    objects = list(scene.objects)
    free = scene.free_cells()
    kinds = {k: w for k, w in _OP_WEIGHTS.items()
             if (k == "add" and free) or (k == "move" and free and objects) or (k == "background")
             or (k not in ("add", "move", "background") and objects)}
    kind = _weighted(rng, kinds)
    if kind == "background":
        op = Op("background", color=rng.choice([c for c in BACKGROUNDS if c != scene.background]))
        return _Step(op, None, None, None, apply_op(op, scene), uids)
    if kind == "add":
        cell = rng.choice(free)
        op = Op("add", shape=rng.choice(SHAPES), color=rng.choice(COLORS), size=rng.choice(SIZES), cell=cell)
        new_uids = dict(uids)
        new_uids[cell] = max(uids.values(), default=-1) + 1 + 1000
        return _Step(op, None, None, new_uids[cell], apply_op(op, scene), new_uids)
    touched = [obj for obj in objects if uids.get(obj.cell) == last_uid]
    if touched and rng.random() < level["dependent"]:
        target = touched[0]
    else:
        target = rng.choice(objects)
    ref_kind = _weighted(rng, level["refs"])
    ref_text = refer(target, scene, ref_kind, rng)
    if ref_text is None:
        ref_kind, ref_text = "attribute", refer(target, scene, "attribute", rng)
    if ref_text is None:
        ref_kind, ref_text = "location", location_ref(target)
    ref = parse_ref(ref_text)
    if kind == "remove":
        op = Op("remove", ref=ref)
    elif kind == "recolor":
        op = Op("recolor", ref=ref, color=rng.choice([c for c in COLORS if c != target.color]))
    elif kind == "replace":
        op = Op("replace", ref=ref, shape=rng.choice([s for s in SHAPES if s != target.shape]))
    elif kind == "resize":
        rank = SIZES.index(target.size)
        choices = [s for s in SIZES if s != target.size]
        size = rng.choice(choices)
        if abs(SIZES.index(size) - rank) == 1 and rng.random() < 0.4:
            size = "bigger" if SIZES.index(size) > rank else "smaller"
        op = Op("resize", ref=ref, size=size)
    else:  # move
        steps = [d for d, (dr, dc) in DIRECTIONS.items() if (target.row + dr, target.col + dc) in free]
        if steps and rng.random() < 0.4:
            op = Op("move", ref=ref, direction=rng.choice(steps))
        else:
            op = Op("move", ref=ref, cell=rng.choice(free))
    after, cell = apply_to(op, scene, target)
    new_uids = dict(uids)
    uid = new_uids.pop(target.cell)
    if cell is not None:
        new_uids[cell] = uid
    return _Step(op, ref_text, ref_kind, uid, after, new_uids)


@lru_cache(maxsize=65536)
def _reads_as(text: str, scene: Scene, after: Scene) -> bool:
    """Whether ``text`` has exactly one reading and that reading turns ``scene`` into ``after``."""
    try:
        (op,) = parse_instruction(text)
        return apply_op(op, scene) == after
    except (ParseError, EditFailure, ValueError):
        return False


def _clause(rng: random.Random, step: _Step, pronoun: bool, before: Scene) -> tuple[str, str] | None:
    """A phrasing of ``step`` that reads exactly one way and turns ``before`` into ``step.after``, as written in
    the complex instruction (with ``it`` for its object when ``pronoun``) and standalone (the atomic
    instruction: the same words with the referring expression), or None when no phrasing does."""
    key = phrasing_key(step.op)
    count = len(PHRASINGS[key])
    first = rng.randrange(count)
    for offset in range(count):
        variant = (first + offset) % count
        standalone = phrase(step.op, step.ref_text, variant)
        if _reads_as(standalone, before, step.after):
            return (phrase(step.op, "it", variant) if pronoun else standalone), standalone
    return None


def _compose(rng: random.Random, source: Scene, steps: list[_Step], level: dict) -> tuple[str, tuple[str, ...]]:
    """One complex instruction for ``steps`` from ``source``: ordered with connectives (and pronouns), or
    reordered; every clause in a phrasing with one reading (the program guarantees one exists). Returns the
    text and its clauses in execution order as standalone atomic instructions (pronouns resolved): the
    decomposition of THIS text, as in MIRA-Editing, where a complex instruction merges the session's atomic ones."""
    count = len(steps)
    befores = [source] + [step.after for step in steps[:-1]]
    if count >= 2 and rng.random() < level["reorder"]:
        pairs = [_clause(rng, step, False, before) for step, before in zip(steps, befores)]
        clauses = [written for written, _ in pairs]
        atomic = tuple(standalone for _, standalone in pairs)
        first = ", then ".join(clauses[:-1]) if count > 2 else clauses[0]
        template = rng.randrange(2)
        if template == 0:
            text = f"Before you {clauses[-1]}, {first}."
        else:
            text = f"{clauses[-1][0].upper()}{clauses[-1][1:]}, but first {first}."
        return text, atomic
    pairs = []
    for index, step in enumerate(steps):
        same = (index > 0 and step.target_uid is not None and step.target_uid == steps[index - 1].target_uid
                and steps[index - 1].op.kind != "remove" and step.ref_text is not None)
        pairs.append(_clause(rng, step, same and rng.random() < level["pronoun"], befores[index]))
    clauses = [written for written, _ in pairs]
    atomic = tuple(standalone for _, standalone in pairs)
    template = rng.randrange(4)
    if template == 0:
        body = ", then ".join(clauses[:-1]) + (", and finally " if count > 2 else ", then ") + clauses[-1]
    elif template == 1:
        words = ["first"] + ["next"] * (count - 2) + ["finally"]
        body = "; ".join(f"{w} {c}" for w, c in zip(words, clauses))
    elif template == 2:
        body = ", ".join(clauses[:-1]) + " and then " + clauses[-1]
    else:
        body = ". ".join([clauses[0]] + [f"{'after that' if i % 2 else 'then'}, {c}"
                                          for i, c in enumerate(clauses[1:], start=1)])
    return _sentences(body + "."), atomic


def _sentences(text: str) -> str:
    """Capitalise the first letter of every sentence."""
    parts = text.split(". ")
    return ". ".join(part[:1].upper() + part[1:] for part in parts)


#: attempts before :meth:`ShapesTaskGenerator.spec` gives up (never reached: a draw succeeds with probability
#: above 5% for every valid config, so 2000 failures in a row have probability below 1e-40)
_MAX_DRAWS = 2000


class ShapesTaskGenerator:
    """A reproducible :class:`~mira_env.tasks.TaskSource` of shapes-world tasks (``__len__``,
    ``__getitem__``, ``get(id)``); keyword arguments are :class:`ShapesTaskConfig` fields.

    ``generator[i]`` is the same task whatever was asked before and whatever ``num_tasks`` is (a
    larger generator extends a smaller one); the last ``cache_size`` rendered tasks are kept.
    """

    def __init__(self, config: ShapesTaskConfig | None = None, *, cache_size: int = 2048, **options: Any) -> None:
        if config is not None and options:
            raise ConfigError("pass either config= or ShapesTaskConfig keyword arguments, not both")
        self.config = config or ShapesTaskConfig(**options)
        cfg = self.config
        self._stream = f"{_STREAM}/{cfg.seed}/{cfg.split}/{cfg.difficulty}"
        self._tasks: OrderedDict[int, Task] = OrderedDict()
        self._cache_size = cache_size
        suffix = "" if cfg.difficulty is None else f"-d{cfg.difficulty}"
        self._prefix = f"shapes-{cfg.split}-s{cfg.seed}{suffix}-"

    def __len__(self) -> int:
        return self.config.num_tasks

    def __iter__(self):
        for index in range(len(self)):
            yield self[index]

    def _index(self, index: Any) -> int:
        if isinstance(index, bool) or not isinstance(index, int):
            try:
                index = int(index)  # numpy integers
            except (TypeError, ValueError):
                raise TaskError(f"task index {describe(index)} must be an int") from None
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"task index {index} out of range for {len(self)} tasks")
        return index

    def __getitem__(self, index: int) -> Task:
        index = self._index(index)
        task = self._tasks.get(index)
        if task is None:
            task = self._build(index)
            self._tasks[index] = task
            if len(self._tasks) > self._cache_size:
                self._tasks.popitem(last=False)
        else:
            self._tasks.move_to_end(index)
        return task

    def get(self, task_id: str) -> Task:
        """The task with id ``task_id`` (``<prefix><index>``)."""
        if isinstance(task_id, str) and task_id.startswith(self._prefix) and task_id[len(self._prefix):].isdigit():
            index = int(task_id[len(self._prefix):])
            if index < len(self):
                return self[index]
        raise TaskError(f"no task with id {task_id!r} in this generator; ids are {self._prefix}00000 .. "
                        f"{self._prefix}{len(self) - 1:05d}")

    def task_id(self, index: int) -> str:
        return f"{self._prefix}{index:05d}"

    # ------------------------------------------------------------------ generation
    def spec(self, index: int) -> TaskSpec:
        """The unrendered task ``index``: drawn from its own random stream (O(1), independent of other tasks)."""
        index = self._index(index)
        cfg = self.config
        rng = random.Random(f"{self._stream}/{index}")
        for _ in range(_MAX_DRAWS):
            scene = random_scene(rng, cfg.min_objects, cfg.max_objects)
            if split_of(scene) != cfg.split:
                continue
            difficulty = cfg.difficulty or rng.choice(DIFFICULTIES)
            spec = self._program(rng, scene, difficulty)
            if spec is not None:
                return spec
        raise TaskError(f"could not draw task {index} for {cfg} in {_MAX_DRAWS} attempts; "  # pragma: no cover
                        f"this is a bug in the generator, please report it")

    def _program(self, rng: random.Random, scene: Scene, difficulty: int) -> TaskSpec | None:
        """A program of edits for ``scene`` whose atomic instructions each read one way, or None (redraw)."""
        level = LEVELS[difficulty]
        count = rng.choice(level["edits"])
        uids = {obj.cell: index for index, obj in enumerate(scene.objects)}
        steps: list[_Step] = []
        current, last_uid = scene, None
        for _ in range(count):
            step = text = None
            for _attempt in range(20):
                candidate = _random_op(rng, current, uids, level, last_uid)
                if candidate is None or candidate.after == current or candidate.after == scene or any(
                        candidate.after == s.after for s in steps):
                    continue
                if _clause(rng, candidate, False, before=current) is not None:
                    step = candidate
                    break
            if step is None:
                return None
            steps.append(step)
            current, uids, last_uid = step.after, step.uids, step.target_uid
        texts: list[str] = []
        atomic: tuple[str, ...] = ()
        for _ in range(self.config.num_variants * 4 + 4):
            text, clauses = _compose(rng, scene, steps, level)
            if text not in texts:
                texts.append(text)
                atomic = atomic or clauses  # the atomic instructions are the clauses of the main instruction
            if len(texts) > self.config.num_variants:
                break
        return TaskSpec(scene, tuple(s.op for s in steps), atomic, tuple(s.after for s in steps), texts[0],
                        tuple(texts[1:]), difficulty, tuple(s.ref_kind or "none" for s in steps))

    def _build(self, index: int) -> Task:
        spec, cfg = self.spec(index), self.config
        target = spec.scenes[-1]
        program = [dict(op.to_dict(), instruction=text) for op, text in zip(spec.ops, spec.atomic)]
        return Task(
            id=self.task_id(index), instruction=spec.instruction,
            image=render_image(spec.scene, cfg.resolution), target_image=render_image(target, cfg.resolution),
            atomic_instructions=spec.atomic, variants=spec.variants,
            metadata={"scene": spec.scene.to_dict(), "target_scene": target.to_dict(), "program": program,
                      "difficulty": spec.difficulty, "split": cfg.split, "source": "shapes",
                      "ref_kinds": list(spec.ref_kinds)})


__all__ = ["DEFAULT_NUM_TASKS", "DIFFICULTIES", "GENERATOR_VERSION", "SPLITS", "ShapesTaskConfig", "ShapesTaskGenerator",
           "TaskSpec",
           "random_scene", "split_of"]
