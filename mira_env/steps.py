"""The phases of one ``EditEnv`` step, shared by :class:`~mira_env.env.EditEnv` and the batched paths.

``plan = env.plan_step(action)`` -> :func:`execute_edits` (ONE editor call for many plans) ->
``env.apply_edit(plan)`` -> :func:`score_batch` (ONE reward call for many plans) -> ``env.finish_step(plan, output)``.

Also the seed derivation of a step (:func:`step_seed`), how actions and states are shown in observations and
infos (:func:`observable_text`, :func:`copy_state`) and the per-step records (:class:`StepPlan`,
:class:`EditOutcome`, :class:`StepTimings`). Everything here is re-exported by :mod:`mira_env.env`.
"""

from __future__ import annotations

import time
from copy import deepcopy
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, Sequence

from PIL import Image

from mira_env.actions import first_control_character
from mira_env.editors.base import Editor, edit_status
from mira_env.errors import describe
from mira_env.redact import error_text
from mira_env.reward_api import RewardFunction, RewardInput, RewardOutput

_SEED_LIMIT = 2**31 - 1
_MASK64 = 2**64 - 1
#: an empty, read-only mapping: ``info["editor_status"]`` / ``info["reward_errors"]`` when there is nothing to say
EMPTY: Mapping[str, Any] = MappingProxyType({})


def observable_text(text: str) -> str:
    """``text`` as an observation shows it: unchanged in any language; line breaks become ``"\n"``,
    tabs spaces, other control characters are dropped (they cannot be shown)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    if first_control_character(text.replace("\n", " ")) is None:
        return text
    return "".join(ch for ch in text if ch == "\n" or first_control_character(ch) is None)


def step_seed(episode_seed: int, step: int) -> int:
    """The editor seed of step ``step`` of an episode whose editor seed is ``episode_seed``.

    A splitmix64 mix of the pair: well spread, deterministic across platforms, about 1 us.
    """
    z = (int(episode_seed) * 0x9E3779B97F4A7C15 + int(step) * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) % _SEED_LIMIT


def copy_state(value: Any) -> Any:
    """A deep copy of JSON-like world state (dicts, lists, tuples, scalars), faster than ``deepcopy``.

    ``info["state"]`` gets a fresh copy at every reset and step, so no two infos share an object
    and no caller can corrupt the editor's state through them.
    """
    if isinstance(value, dict):
        return {key: copy_state(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_state(item) for item in value]
    if isinstance(value, tuple):
        return tuple(copy_state(item) for item in value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return deepcopy(value)


@dataclass
class EditOutcome:
    """What an editor call produced for one item: an image or an error, and the time it took."""

    image: Image.Image | None
    error: str | None
    latency_s: float
    status: dict | None = None


@dataclass
class StepPlan:
    """Phase 1 of a step: the validated action and the edit to run, if any."""

    raw_action: str
    instruction: str
    stop: bool
    invalid_reason: str | None
    image: Image.Image | None = None  # image to edit (None = no edit this step)
    seed: int | None = None
    outcome: EditOutcome | None = None
    terminated: bool = False
    truncated: bool = False
    penalty: float = 0.0
    reward_input: RewardInput | None = None
    reward_s: float = 0.0

    @property
    def needs_edit(self) -> bool:
        return self.image is not None


@dataclass(frozen=True)
class StepTimings:
    """Wall-clock measurements of one step, in seconds.

    Timings are measurements, not environment state: two ``StepTimings`` always compare equal, so the
    Gymnasium determinism checks (which compare ``info`` dicts) see through them. Read the fields.
    """

    editor_s: float = field(default=0.0, compare=False)
    reward_s: float = field(default=0.0, compare=False)


def _is_blank(image: Image.Image) -> bool:
    lo_hi = image.getextrema()
    return all(lo == hi for lo, hi in lo_hi)


def execute_edits(editor: Editor, plans: Sequence[StepPlan], reject_blank: Sequence[bool]) -> None:
    """Run the edits of ``plans`` that need one in ONE ``editor.edit`` call; store outcomes on the plans.

    An exception fails every item of the batch with the error recorded; a non-image, a wrong count,
    or (when ``reject_blank``) a constant-colour image fails that item. Nothing is raised.
    """
    todo = [(plan, blank) for plan, blank in zip(plans, reject_blank) if plan.needs_edit]
    if not todo:
        return
    images = [plan.image for plan, _ in todo]
    texts = [plan.instruction for plan, _ in todo]
    seeds = [int(plan.seed) for plan, _ in todo]
    start = time.perf_counter()
    try:
        outputs = editor.edit(images, texts, seeds)
        error = None
    except Exception as exc:  # noqa: BLE001 - editor failures are data, see module docstring
        outputs, error = None, error_text(exc)  # redacted, with its cause chain
    latency = (time.perf_counter() - start) / len(todo)
    if error is None and (not isinstance(outputs, (list, tuple)) or len(outputs) != len(todo)):
        count = len(outputs) if isinstance(outputs, (list, tuple)) else describe(outputs)
        outputs, error = None, f"editor returned {count} outputs for {len(todo)} inputs"
    for index, (plan, blank) in enumerate(todo):
        if outputs is None:
            plan.outcome = EditOutcome(None, error, latency)
            continue
        output = outputs[index]
        if isinstance(output, BaseException):  # a per-item failure (RemoteEditor): recorded with its reason
            plan.outcome = EditOutcome(None, f"{type(output).__name__}: {output}", latency)
        elif not isinstance(output, Image.Image):
            plan.outcome = EditOutcome(None, f"editor output is {type(output).__name__}, not a PIL image", latency)
        elif output.width < 1 or output.height < 1:
            plan.outcome = EditOutcome(None, f"editor output has empty size {output.size}", latency)
        elif blank and _is_blank(output):
            plan.outcome = EditOutcome(None, "editor output is a blank (constant colour) image", latency)
        else:
            image = output if output.mode == "RGB" else _keep_info(output, output.convert("RGB"))
            plan.outcome = EditOutcome(image, None, latency, edit_status(output))


def _keep_info(original: Image.Image, converted: Image.Image) -> Image.Image:
    converted.info.update(original.info)
    return converted


def score_batch(reward: RewardFunction | None, plans: Sequence[StepPlan]) -> list[RewardOutput | None]:
    """One ``reward.score`` call for every plan that asked for a reward; ``None`` for the others.

    A reward function that raises yields ``RewardOutput(None, errors={"reward": ...})`` per item, so
    a broken judge is visible in ``info`` instead of crashing a long run.
    """
    results: list[RewardOutput | None] = [None] * len(plans)
    wanted = [i for i, plan in enumerate(plans) if plan.reward_input is not None]
    if reward is None or not wanted:
        return results
    inputs = [plans[i].reward_input for i in wanted]
    start = time.perf_counter()
    try:
        outputs = reward.score(inputs)
        if len(outputs) != len(inputs):
            raise ValueError(f"reward returned {len(outputs)} outputs for {len(inputs)} inputs")
    except Exception as exc:  # noqa: BLE001 - recorded per item
        message = error_text(exc)  # redacted, with its cause chain
        outputs = [RewardOutput(None, {}, {"reward": message}) for _ in inputs]
    elapsed = (time.perf_counter() - start) / len(wanted)
    for index, output in zip(wanted, outputs):
        results[index] = output
        plans[index].reward_s = elapsed
    return results


def step_many(envs: Sequence[Any], actions: Sequence[str], raw_actions: Sequence[str | None] | None = None, *,
              editors: Sequence[Any] | None = None) -> list[tuple]:
    """Step each of ``envs`` (``EditEnv`` instances, each at most once) with its action, batched.

    The edits of every environment that shares one editor run in ONE ``editor.edit`` call, and the rewards of
    every environment that shares one reward function (every step scored, or the episode's end) in ONE
    ``reward.score`` call: what :meth:`~mira_env.vector.BatchedEditEnv.step_active` and a GRPO tool iteration
    (:mod:`mira_env.train.batching`) do. ``editors`` (one per env) runs the edits on another editor object
    than ``env.editor`` (e.g. a deduplicating wrapper of it). Returns one ``(obs, reward, terminated,
    truncated, info)`` per env, exactly what ``env.step(action, raw_action=...)`` would have returned.
    """
    if len(envs) != len(actions):
        raise ValueError(f"step_many got {len(envs)} environments and {len(actions)} actions")
    if len({id(env) for env in envs}) != len(envs):
        raise ValueError("step_many got the same environment twice: each steps at most once per call")
    raws = list(raw_actions) if raw_actions is not None else [None] * len(envs)
    runners = list(editors) if editors is not None else [env.editor for env in envs]
    plans = [env.plan_step(action, raw) for env, action, raw in zip(envs, actions, raws)]
    for members in _groups(runners):
        execute_edits(runners[members[0]], [plans[i] for i in members],
                      [envs[i].config.reject_blank_outputs for i in members])
    for env, plan in zip(envs, plans):
        env.apply_edit(plan)
    outputs: list[RewardOutput | None] = [None] * len(envs)
    for members in _groups([env.reward_fn for env in envs]):
        for index, output in zip(members, score_batch(envs[members[0]].reward_fn, [plans[i] for i in members])):
            outputs[index] = output
    return [env.finish_step(plan, output) for env, plan, output in zip(envs, plans, outputs)]


def _groups(objects: Sequence[Any]) -> list[list[int]]:
    """Indices of ``objects`` grouped by identity, in first-seen order."""
    groups: dict[int, list[int]] = {}
    for index, obj in enumerate(objects):
        groups.setdefault(id(obj), []).append(index)
    return list(groups.values())


__all__ = ["EMPTY", "EditOutcome", "StepPlan", "StepTimings", "copy_state", "execute_edits", "observable_text",
           "score_batch", "step_many", "step_seed"]
