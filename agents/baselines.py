"""Baseline agents: the shapes-world scripted oracle, the one-shot editor call, a random policy and the no-op.

All four implement :class:`mira_env.agents.base.Agent` (``name``, ``act(observations, infos)``, ``reset(n)``).
"""

from __future__ import annotations

import random
from typing import Any, Mapping, Sequence

from mira_env.actions import STOP
from mira_env.shapes.execute import EditFailure, apply_op
from mira_env.shapes.grammar import ParseError, parse_instruction, phrase, Op, parse_ref, PHRASINGS, phrasing_key
from mira_env.shapes.planner import next_edit
from mira_env.shapes.refer import simplest_ref
from mira_env.shapes.scene import BACKGROUNDS, CELLS, COLORS, DIRECTIONS, SHAPES, SIZES, Scene



def _info(infos: Sequence[Mapping[str, Any]] | None, index: int) -> Mapping[str, Any]:
    if infos is None or index >= len(infos) or infos[index] is None:
        return {}
    return infos[index]


class _Slot:
    """What the oracle remembers about the episode in one batch position."""

    def __init__(self, task: Any) -> None:
        self.task_id = getattr(task, "id", None)
        self.program: tuple[str, ...] = tuple(getattr(task, "atomic_instructions", ()))
        self.cursor = 0
        self.following = True
        self.expected: list[Scene] | None = None


class ScriptedOracleAgent:
    """The shapes-world oracle: follows the task's hidden program and re-plans when the editor slips.

    With ``replan=True`` (default) it issues the program's atomic instructions while the scene is the
    one the program expects; as soon as the scene differs (an ignored edit, the wrong object, colour
    or position drift) it switches to the oracle planner (:func:`mira_env.shapes.planner.next_edit`),
    which issues corrective edits from the current scene towards the target. ``"<STOP>"`` when the
    scene equals the target. With ``replan=False`` it plays the program open loop and then stops:
    the gap between the two measures what corrective edits buy.

    Needs ``infos[i]["task"]`` (a shapes task: ``metadata["target_scene"]``) and ``infos[i]["state"]``.
    """

    def __init__(self, replan: bool = True, stop_token: str = STOP) -> None:
        self.replan = replan
        self.stop_token = stop_token
        self.name = "oracle" if replan else "oracle-open-loop"
        self._slots: dict[int | str, _Slot] = {}

    def reset(self, n: int | None = None) -> None:
        self._slots = {}

    def _slot(self, index: int | str, task: Any, step: int) -> _Slot:
        slot = self._slots.get(index)
        if slot is None or step == 0 or slot.task_id != getattr(task, "id", None):
            slot = self._slots[index] = _Slot(task)
        return slot

    def _expected(self, slot: _Slot, task: Any) -> list[Scene]:
        if slot.expected is None:
            scene = Scene.from_dict(task.metadata["scene"])
            slot.expected = [scene]
            try:
                for text in slot.program:
                    for op in parse_instruction(text):
                        scene = apply_op(op, scene)
                    slot.expected.append(scene)
            except (ParseError, EditFailure):
                pass
        return slot.expected

    def act(self, observations: Sequence[Mapping[str, Any]],
            infos: Sequence[Mapping[str, Any]] | None = None) -> list[str]:
        actions = []
        for index, observation in enumerate(observations):
            info = _info(infos, index)
            task, state = info.get("task"), info.get("state")
            metadata = getattr(task, "metadata", None) or {}
            if state is None or "target_scene" not in metadata:
                raise ValueError(f"ScriptedOracleAgent needs shapes-world infos (infos[{index}]['task'] with "
                                 f"metadata['target_scene'] and infos[{index}]['state']); got keys {sorted(info)}")
            step = int(observation.get("step", info.get("step", 0)) or 0)
            # the rollout engine's episode id survives episodes leaving the batch; a bare position does not
            slot = self._slot(info.get("episode_id", index), task, step)
            scene, target = Scene.from_dict(state), Scene.from_dict(metadata["target_scene"])
            if scene == target:
                actions.append(self.stop_token)
                continue
            if not self.replan:
                actions.append(slot.program[slot.cursor] if slot.cursor < len(slot.program) else self.stop_token)
                slot.cursor += 1
                continue
            expected = self._expected(slot, task)
            if (slot.following and slot.cursor < len(slot.program) and slot.cursor < len(expected)
                    and expected[slot.cursor] == scene):
                actions.append(slot.program[slot.cursor])
                slot.cursor += 1
                continue
            slot.following = False
            edit = next_edit(scene, target)
            actions.append(self.stop_token if edit is None else edit[1])
        return actions


class OneShotAgent:
    """Sends the whole complex instruction as one edit, then ``"<STOP>"``; works on any task."""

    def __init__(self, stop_token: str = STOP) -> None:
        self.stop_token = stop_token
        self.name = "one-shot"

    def reset(self, n: int | None = None) -> None:
        return None

    def act(self, observations: Sequence[Mapping[str, Any]],
            infos: Sequence[Mapping[str, Any]] | None = None) -> list[str]:
        actions = []
        for observation in observations:
            first = int(observation.get("step", 0)) == 0
            actions.append(str(observation["instruction"]) if first else self.stop_token)
        return actions


class NoOpAgent:
    """Answers ``"<STOP>"`` at once: the episode scores the source image itself (the floor every table row beats)."""

    def __init__(self, stop_token: str = STOP) -> None:
        self.stop_token = stop_token
        self.name = "no-op"

    def reset(self, n: int | None = None) -> None:
        return None

    def act(self, observations: Sequence[Mapping[str, Any]],
            infos: Sequence[Mapping[str, Any]] | None = None) -> list[str]:
        return [self.stop_token for _ in observations]


class RandomAgent:
    """Seeded random atomic instructions from the shapes grammar, or ``"<STOP>"`` (a sanity baseline).

    When ``infos[i]["state"]`` holds a scene, half the edits name one of its objects (so they can take
    effect); the rest use random attribute descriptions that may match nothing.

    Every action is drawn from its own stream, seeded by ``(seed, episode, step)``: the episode is
    ``infos[i]["episode_id"]`` (set by the rollout engine), else the task id and editor seed. An episode
    is therefore the same whatever else shares its batch, so a resumed run replays exactly the episodes
    an uninterrupted run plays.
    """

    def __init__(self, seed: int = 0, stop_probability: float = 0.1, stop_token: str = STOP) -> None:
        if not 0.0 <= stop_probability <= 1.0:
            raise ValueError(f"stop_probability={stop_probability!r} must be in [0, 1]")
        self.seed = seed
        self.stop_probability = stop_probability
        self.stop_token = stop_token
        self.name = "random"
        self._rng = random.Random(seed)

    def reset(self, n: int | None = None) -> None:
        return None

    def _ref(self, state: Any, rng: random.Random) -> str:
        if isinstance(state, Mapping) and state.get("objects") and rng.random() < 0.5:
            scene = Scene.from_dict(state)
            return simplest_ref(rng.choice(scene.objects), scene)
        words = [w for w, keep in ((rng.choice(SIZES), rng.random() < 0.3), (rng.choice(COLORS), rng.random() < 0.6))
                 if keep]
        return "the " + " ".join(words + [rng.choice(SHAPES)])

    def random_instruction(self, state: Any = None, rng: random.Random | None = None) -> str:
        """One random atomic instruction (parseable by the shapes grammar), from ``rng`` (default: the
        agent's own stream)."""
        rng = rng or self._rng
        kind = rng.choice(("add", "remove", "recolor", "move", "resize", "replace", "background"))
        if kind == "background":
            op = Op("background", color=rng.choice(BACKGROUNDS))
        elif kind == "add":
            op = Op("add", shape=rng.choice(SHAPES), color=rng.choice(COLORS), size=rng.choice(SIZES),
                    cell=rng.choice(CELLS))
        else:
            ref = parse_ref(self._ref(state, rng))
            fields = {"remove": {}, "recolor": {"color": rng.choice(COLORS)},
                      "resize": {"size": rng.choice(SIZES + ("bigger", "smaller"))},
                      "replace": {"shape": rng.choice(SHAPES)}}
            if kind == "move":
                fields["move"] = ({"direction": rng.choice(list(DIRECTIONS))} if rng.random() < 0.5
                                  else {"cell": rng.choice(CELLS)})
            op = Op(kind, ref=ref, **fields[kind])
        return phrase(op, variant=rng.randrange(len(PHRASINGS[phrasing_key(op)])))

    def act(self, observations: Sequence[Mapping[str, Any]],
            infos: Sequence[Mapping[str, Any]] | None = None) -> list[str]:
        actions = []
        for index, observation in enumerate(observations):
            info = _info(infos, index)
            rng = random.Random(f"mira-random/{self.seed}/{self._episode(info, index)}/"
                                f"{int(observation.get('step', info.get('step', 0)) or 0)}")
            if rng.random() < self.stop_probability:
                actions.append(self.stop_token)
            else:
                actions.append(self.random_instruction(info.get("state"), rng))
        return actions

    @staticmethod
    def _episode(info: Mapping[str, Any], index: int) -> str:
        episode = info.get("episode_id")
        if episode is not None:
            return str(episode)
        return f"{info.get('task_id', index)}|{info.get('history', [])!r}"


__all__ = ["NoOpAgent", "OneShotAgent", "RandomAgent", "ScriptedOracleAgent"]
