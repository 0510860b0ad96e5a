"""Shapes-world episodes of deliberately varied quality for the reward audit.

Built on ``mira_env.shapes`` public APIs only (``mira_env.rewards`` may not import ``mira_env.agents``): the oracle
planner (``next_edit``, what ``mira_env.agents.baselines.ScriptedOracleAgent`` replans with), the task
program (``task.atomic_instructions``), the grammar (``Op`` + ``phrase`` for random edits) and the
``ShapesEditor`` seeded noise through ``make_shapes_env(noise=...)``.

Episode kinds:

- ``oracle``: replans with ``next_edit`` from the current scene every step (corrects noisy edits);
- ``partial``: the first ``k < n`` instructions of the task's program, then ``<STOP>``;
- ``one_shot``: the complex instruction C as one edit;
- ``random``: 1-3 random atomic edits on objects of the scene;
- ``noop``: ``<STOP>`` at once (the unedited source);
- ``over_edit``: the whole program, then 1-2 extra random edits.

Each kind runs at every editor noise level, so quality spans "perfect" to "unrelated".
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterator, Sequence

from mira_env.actions import STOP
from mira_env.editors.base import STATE_KEY
from mira_env.reward_api import RewardInput, RewardOutput

KINDS = ("oracle", "partial", "one_shot", "random", "noop", "over_edit")


@dataclass
class AuditEpisode:
    """One finished episode: how it was produced and its final :class:`RewardInput`."""

    kind: str
    noise: float
    task_id: str
    item: RewardInput


class _Recorder:
    """A RewardFunction that keeps the final RewardInput of each episode (its score is irrelevant)."""

    def __init__(self) -> None:
        self.items: list[RewardInput] = []

    def score(self, items):
        self.items.extend(items)
        return [RewardOutput(0.0) for _ in items]


def random_instruction(rng: random.Random, state) -> str:
    """A random atomic instruction of the shapes grammar, naming an object of ``state`` when it has one."""
    from mira_env.shapes.grammar import Op, parse_ref, phrase
    from mira_env.shapes.refer import simplest_ref
    from mira_env.shapes.scene import BACKGROUNDS, CELLS, COLORS, SHAPES, SIZES, Scene

    scene = Scene.from_dict(state) if state is not None else None
    kind = rng.choice(("add", "remove", "recolor", "resize", "replace", "move", "background"))
    if kind == "background":
        return phrase(Op("background", color=rng.choice(BACKGROUNDS)))
    if kind == "add" or scene is None or not scene.objects:
        return phrase(Op("add", shape=rng.choice(SHAPES), color=rng.choice(COLORS), size=rng.choice(SIZES),
                         cell=rng.choice(CELLS)))
    obj = rng.choice(scene.objects)
    ref_text = simplest_ref(obj, scene)
    fields = {"remove": {}, "recolor": {"color": rng.choice(COLORS)}, "resize": {"size": rng.choice(SIZES)},
              "replace": {"shape": rng.choice(SHAPES)}, "move": {"cell": rng.choice(CELLS)}}[kind]
    return phrase(Op(kind, ref=parse_ref(ref_text), **fields), ref_text)


def _scripted(kind: str, task, rng: random.Random, state) -> list[str]:
    program = list(task.atomic_instructions)
    if kind == "partial":
        return program[: rng.randint(0, max(0, len(program) - 1))] + [STOP]
    if kind == "one_shot":
        return [task.instruction, STOP]
    if kind == "random":
        return [None] * rng.randint(1, 3) + [STOP]  # None = a random edit drawn from the state at that step
    if kind == "noop":
        return [STOP]
    if kind == "over_edit":
        return program + [None] * rng.randint(1, 2) + [STOP]
    raise ValueError(f"unknown episode kind {kind!r}; choose from {KINDS}")


def _run(env, kind: str, task_index: int, seed: int, rng: random.Random) -> None:
    from mira_env.shapes.planner import next_edit

    _, info = env.reset(seed=seed, options={"task": task_index})
    task = info["task"]
    target = task.metadata["target_scene"]
    script = None if kind == "oracle" else _scripted(kind, task, rng, info["state"])
    step = 0
    while True:
        if script is None:
            edit = next_edit(info["state"], target)
            action = STOP if edit is None else edit[1]
        else:
            action = script[min(step, len(script) - 1)]
            if action is None:
                action = random_instruction(rng, info["state"])
        _, _, terminated, truncated, info = env.step(action)
        step += 1
        if terminated or truncated:
            return


def generate_episodes(num_episodes: int, noise_levels: Sequence[float] = (0.0, 0.2, 0.5),
                      kinds: Sequence[str] = KINDS, seed: int = 0, split: str = "validation",
                      resolution: int = 64, max_steps: int = 8, progress: bool = True) -> list[AuditEpisode]:
    """``num_episodes`` episodes cycling through ``kinds`` x ``noise_levels`` over distinct tasks."""
    from mira_env.shapes import make_shapes_env
    from tqdm.auto import tqdm

    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        from mira_env.rewards.errors import RewardConfigError

        raise RewardConfigError(f"unknown episode kind(s) {unknown}; choose from {list(KINDS)}")
    rng = random.Random(seed)
    recorders = {level: _Recorder() for level in noise_levels}
    envs = {level: make_shapes_env(split=split, num_tasks=max(num_episodes, 1), seed=seed, noise=level,
                                   resolution=resolution, max_steps=max_steps, reward=recorders[level])
            for level in noise_levels}
    episodes = []
    for index in tqdm(range(num_episodes), desc="audit episodes", disable=not progress):
        kind = kinds[index % len(kinds)]
        level = noise_levels[(index // len(kinds)) % len(noise_levels)]
        recorder = recorders[level]
        _run(envs[level], kind, index, seed * 100_003 + index, rng)
        item = recorder.items[-1]
        episodes.append(AuditEpisode(kind, float(level), item.task.id, item))
    return episodes


def reference_items(episodes: Sequence[AuditEpisode], limit: int = 8) -> dict[str, list[RewardInput]]:
    """Reference pairs on the first ``limit`` distinct tasks.

    - ``identity``: target vs target (source = edited = the target image);
    - ``perfect``: the source I0 vs the target image (an exact edit);
    - ``noop``: the source I0 unchanged (source = edited = I0).
    """
    from mira_env.shapes.render import render_image

    out: dict[str, list[RewardInput]] = {"identity": [], "perfect": [], "noop": []}
    seen = set()
    for episode in episodes:
        task = episode.item.task
        if task.id in seen or len(seen) >= limit:
            continue
        seen.add(task.id)
        source = episode.item.source
        target = render_image(_scene(task.metadata["target_scene"]), source.size[::-1])
        noop = source.copy()
        noop.info[STATE_KEY] = task.metadata["scene"]
        for name, (src, edited) in {"identity": (target, target), "perfect": (source, target),
                                    "noop": (source, noop)}.items():
            out[name].append(RewardInput(source=src, edited=edited, instruction=task.instruction,
                                         trajectory=list(task.atomic_instructions) if name == "perfect" else [],
                                         task=task))
    return out


def _scene(data):
    from mira_env.shapes.scene import Scene

    return Scene.from_dict(data)


def batches(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
