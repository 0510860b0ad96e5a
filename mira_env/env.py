"""``EditEnv``: instruction-guided image editing as a Gymnasium environment.

State (I0, It, C); action: one atomic instruction as text, or ``<STOP>``; the editor executes the
instruction on It. One step runs in four phases (:mod:`mira_env.steps`) so
that :class:`~mira_env.vector.BatchedEditEnv` and GRPO's tool iterations (:func:`mira_env.steps.step_many`) can
send the edits and the reward calls of many environments in one batched call each:

``plan = env.plan_step(action)`` -> ``execute_edits(editor, plans)`` -> ``env.apply_edit(plan, outcome)``
-> ``score_batch(reward, inputs)`` -> ``env.finish_step(plan, reward_output)``.
"""

from __future__ import annotations

import inspect
import math
from types import MappingProxyType
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from PIL import Image

from mira_env.actions import first_control_character
from mira_env.config import EditEnvConfig
from mira_env.editors.base import STATE_KEY, Editor
from mira_env.errors import ActionError, ConfigError, TaskError, describe
from mira_env.reward_api import RewardFunction, RewardInput, RewardOutput
from mira_env.steps import (  # noqa: F401 - re-exported: `from mira_env.env import StepPlan, execute_edits, ...`
    _SEED_LIMIT,
    EMPTY,
    EditOutcome,
    StepPlan,
    StepTimings,
    copy_state,
    execute_edits,
    observable_text,
    score_batch,
    step_many,
    step_seed,
)
from mira_env.tasks.images import image_strip, to_array
from mira_env.tasks.loaders import resolve_tasks
from mira_env.tasks.task import Task, TaskSource, find_task
from mira_env.text_space import InstructionText


class EditEnv(gym.Env[dict, str]):
    """Instruction-guided image editing with an injected editor, reward and task source.

    Args:
        editor: an :class:`~mira_env.editors.base.Editor`, or a spec for
            :func:`mira_env.editors.make_editor` (preset name, hub id, local path, ``"identity"``).
        tasks: a :class:`TaskSource`, a list of :class:`Task`, a ``.jsonl`` path or a folder.
        reward: an object with ``score(list[RewardInput]) -> list[RewardOutput]``, or ``None``
            (only penalties are returned as reward).
        render_mode: ``None`` or ``"rgb_array"``: ``render()`` returns the current frame, (H, W, 3) uint8.
            ``gymnasium.make(..., render_mode="rgb_array_list")`` returns the episode's frames;
            :meth:`episode_strip` joins them side by side.
        config: an :class:`EditEnvConfig`; any of its fields may also be passed as keywords.
        editor_kwargs: passed to ``make_editor`` when ``editor`` is a string.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 1}

    def __init__(self, editor: Editor | str | None = None, tasks: Any = None, reward: RewardFunction | None = None,
                 render_mode: str | None = None, config: EditEnvConfig | None = None,
                 editor_kwargs: dict | None = None, **options: Any) -> None:
        super().__init__()
        self.config = EditEnvConfig.from_kwargs(config, **options)
        if editor is None:
            raise ConfigError("EditEnv needs an editor: pass editor=<Editor> or a preset / hub id / local "
                              "path such as editor='timbrooks/instruct-pix2pix' (or 'identity' for a no-op)")
        if tasks is None:
            raise ConfigError("EditEnv needs tasks: pass tasks=<list of Task | .jsonl path | image folder>, "
                              "or use gymnasium.make('mira/Shapes-v0') for the embedded shapes world")
        if isinstance(editor, str):
            from mira_env.editors import make_editor

            editor = make_editor(editor, **(editor_kwargs or {}))
        if not hasattr(editor, "edit"):
            raise ConfigError(f"editor={describe(editor)} has no edit(images, instructions, seeds) method")
        if reward is not None and not callable(getattr(reward, "score", None)):
            raise ConfigError(f"reward={describe(reward)} has no score(items) method")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(f"render_mode={render_mode!r} is not supported; use None or 'rgb_array'")
        self.editor = editor
        self.tasks: TaskSource = resolve_tasks(tasks)
        self.reward_fn = reward
        self.render_mode = render_mode
        cfg = self.config
        image_space = spaces.Box(0, 255, (cfg.height, cfg.width, 3), np.uint8)
        self.observation_space = spaces.Dict({
            "source": image_space,
            "current": spaces.Box(0, 255, (cfg.height, cfg.width, 3), np.uint8),
            "instruction": InstructionText(cfg.max_task_instruction_length, allow_newline=True),
            "history": InstructionText(cfg.max_steps * (cfg.max_instruction_length + 1), allow_newline=True),
            "step": spaces.Discrete(cfg.max_steps + 1),
        })
        self.action_space = InstructionText(cfg.max_instruction_length)
        names = getattr(reward, "component_names", None)
        self._component_names: tuple[str, ...] = tuple(names) if names is not None else ()
        self._time_limit_checked = False
        self._task: Task | None = None
        self._instruction_obs = ""
        self._source: Image.Image | None = None
        self._current: Image.Image | None = None
        self._source_obs: np.ndarray | None = None
        self._current_obs: np.ndarray | None = None
        self._frames: list[np.ndarray] = []
        self._history: list[str] = []
        self._raw_actions: list[str] = []
        self._invalid = 0
        self._step = 0
        self._episode_seed = 0
        self._last_score = 0.0
        self._done = True

    def clone(self) -> "EditEnv":
        """A fresh environment sharing this one's editor, tasks, reward function, config and render mode.

        Nothing of the episode is copied (the clone needs a ``reset``) and the clone has its own ``np_random``:
        the copies a :class:`~mira_env.vector.BatchedEditEnv` or a GRPO rollout steps side by side. A subclass
        whose ``__init__`` takes other arguments overrides this method.
        """
        return type(self)(editor=self.editor, tasks=self.tasks, reward=self.reward_fn, config=self.config,
                          render_mode=self.render_mode)

    # ------------------------------------------------------------------ properties
    @property
    def task(self) -> Task | None:
        """The task of the current episode."""
        return self._task

    @property
    def source_image(self) -> Image.Image | None:
        """I0 at its original resolution (after normalisation)."""
        return self._source

    @property
    def current_image(self) -> Image.Image | None:
        """It as the editor returned it (its own resolution)."""
        return self._current

    @property
    def history(self) -> list[str]:
        """The atomic instructions executed so far in this episode."""
        return list(self._history)

    @property
    def done(self) -> bool:
        """Whether the episode has ended (or not started): ``step`` then needs a ``reset``."""
        return self._done

    @property
    def episode_seed(self) -> int:
        """The editor seed of this episode; step seeds derive from it with :func:`step_seed`."""
        return self._episode_seed

    # ------------------------------------------------------------------ reset
    def _select_task(self, choice: Any) -> Task:
        if choice is None:
            return self.tasks[int(self.np_random.integers(len(self.tasks)))]
        if isinstance(choice, Task):
            return choice
        if isinstance(choice, (int, np.integer)) and not isinstance(choice, bool):
            if not 0 <= int(choice) < len(self.tasks):
                raise TaskError(f"options['task']={int(choice)} is out of range for {len(self.tasks)} tasks")
            return self.tasks[int(choice)]
        if isinstance(choice, str):
            return find_task(self.tasks, choice)
        raise TaskError(f"options['task']={describe(choice)}: expected a Task, an index or a task id")

    def _check_time_limit(self) -> None:
        """Refuse an outer ``TimeLimit`` shorter than the step budget (``gym.make(..., max_episode_steps=N)``).

        Its truncation would end episodes before the env scores them (terminal rewards come with the env's
        own budget). The wrapper calling ``reset`` is found on the call stack, once per env.
        """
        self._time_limit_checked = True
        frame = inspect.currentframe()
        for _ in range(16):
            if frame is None:
                return
            caller = frame.f_locals.get("self")
            if isinstance(caller, gym.wrappers.TimeLimit) and caller.unwrapped is self:
                limit = vars(caller).get("_max_episode_steps")
                if not isinstance(limit, int):
                    return
                if limit < self.config.max_steps:
                    raise ConfigError(
                        f"max_episode_steps={limit} (a TimeLimit wrapper) is below max_steps={self.config.max_steps}: "
                        f"it would end episodes at step {limit} without the final score. Pass max_steps={limit} "
                        f"to the environment instead (its own budget scores the episode)")
                return
            frame = frame.f_back

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if not self._time_limit_checked:
            self._check_time_limit()
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - {"task", "editor_seed"})
        if unknown:
            raise ConfigError(f"unknown reset option(s) {unknown}; known: ['editor_seed', 'task']")
        task = self._select_task(options.get("task"))
        episode_seed = options.get("editor_seed")
        if episode_seed is None:
            episode_seed = int(self.np_random.integers(_SEED_LIMIT))
        source = task.load_source(self.config.max_pixels)
        self._task, self._source, self._current = task, source, source.copy()
        self._instruction_obs = observable_text(task.instruction)[: self.config.max_task_instruction_length]
        self._episode_seed = int(episode_seed)
        self._source_obs = to_array(source, (self.config.height, self.config.width))
        self._current_obs = self._source_obs.copy()
        self._frames = [self._source_obs]
        self._history, self._raw_actions = [], []
        self._invalid, self._step, self._last_score, self._done = 0, 0, 0.0, False
        return self._observation(), self._info(instruction="", valid=True, invalid_reason=None, stop=False,
                                               penalty=0.0, seed=self._episode_seed,
                                               outcome=None, reward_s=0.0, reward_output=None)

    def _info(self, *, instruction: str, valid: bool, invalid_reason: str | None, stop: bool, penalty: float,
              seed: int, outcome: EditOutcome | None, reward_s: float, reward_output: RewardOutput | None) -> dict:
        """The ``info`` dict: the same keys with the same types at reset and at every step.

        ``editor_seed`` is the episode's editor seed at reset and the step's seed (:func:`step_seed`) at a
        step. ``editor_status`` and ``reward_errors`` are read-only mappings (empty when there is nothing to say);
        ``reward_components`` has one entry per component the reward declares (``component_names``), None
        when unscored; ``reward_total`` is None and ``reward_scored`` False at unscored steps.
        """
        components: dict[str, float | None] = dict.fromkeys(self._component_names)
        total, scored, errors = None, False, EMPTY
        if reward_output is not None:
            value = reward_output.total
            scored = value is not None and math.isfinite(float(value))
            total = float(value) if scored else None
            for name, component in reward_output.components.items():
                components[name] = None if component is None else float(component)
            errors = MappingProxyType(dict(reward_output.errors))
        status = EMPTY if outcome is None or outcome.status is None else MappingProxyType(dict(outcome.status))
        return {
            "task_id": self._task.id, "task": self._task, "step": self._step, "source_size": self._source.size,
            "state": copy_state(self._current.info.get(STATE_KEY)), "instruction": instruction,
            "valid_action": valid, "invalid_reason": invalid_reason, "stop": stop, "penalty": float(penalty),
            "history": list(self._history), "editor_seed": int(seed),
            "editor_error": None if outcome is None else outcome.error, "editor_status": status,
            "timings": StepTimings(editor_s=outcome.latency_s if outcome else 0.0, reward_s=reward_s),
            "reward_total": total, "reward_scored": scored, "reward_components": components, "reward_errors": errors,
        }

    def _observation(self) -> dict:
        return {
            "source": self._source_obs.copy(),
            "current": self._current_obs.copy(),
            "instruction": self._instruction_obs,
            "history": "\n".join(self._history),
            "step": self._step,
        }

    # ------------------------------------------------------------------ step phases
    def validate_action(self, action: Any) -> tuple[str, bool, str | None]:
        """``(instruction, stop, invalid_reason)`` for ``action``; raises :class:`ActionError` for non-str.

        The instruction is stripped and its whitespace runs collapsed to one space (the rule of
        :func:`mira_env.actions.parse_action`); text in any language passes unchanged. Invalid reasons:
        ``"empty"`` (nothing but whitespace), ``"control_character"`` (a control, unassigned or surrogate
        character, :func:`~mira_env.actions.first_control_character`), ``"too_long"`` (over
        ``max_instruction_length``).
        """
        if isinstance(action, np.str_):
            action = str(action)
        if not isinstance(action, str):
            raise ActionError(f"action must be a str (an atomic instruction or {self.config.stop_token!r}), "
                              f"got {describe(action)}")
        instruction = " ".join(action.split())
        if instruction.lower() == self.config.stop_token.lower():
            return self.config.stop_token, True, None
        if not instruction:
            return "", False, "empty"
        if first_control_character(instruction) is not None:
            return instruction, False, "control_character"
        if len(instruction) > self.config.max_instruction_length:
            return instruction, False, "too_long"
        return instruction, False, None

    def plan_step(self, action: Any, raw_action: str | None = None) -> StepPlan:
        """Phase 1: validate ``action`` and decide whether to edit.

        ``raw_action`` is the policy's full answer text when ``action`` was parsed out of it (e.g.
        ``"<think>..</think><edit>X</edit>"`` for action ``"X"``); format-type rewards score it.
        """
        if self._done or self._task is None:
            raise gym.error.ResetNeeded("EditEnv.step() called before reset() or after the episode ended; "
                                        "call reset() first")
        instruction, stop, invalid = self.validate_action(action)
        plan = StepPlan(raw_action=action if raw_action is None else str(raw_action), instruction=instruction,
                        stop=stop, invalid_reason=invalid, seed=step_seed(self._episode_seed, self._step))
        if not stop and invalid is None:
            plan.image = self._current
        return plan

    def apply_edit(self, plan: StepPlan) -> StepPlan:
        """Phase 3: update the state from the plan's edit outcome and prepare the reward input."""
        cfg = self.config
        self._step += 1
        self._raw_actions.append(plan.raw_action)
        if plan.invalid_reason is not None:
            self._invalid += 1
            plan.penalty += cfg.invalid_action_penalty
        outcome = plan.outcome
        if plan.needs_edit:
            self._history.append(plan.instruction)
            if outcome is not None and outcome.image is not None:
                self._current = outcome.image
                self._current_obs = to_array(outcome.image, (cfg.height, cfg.width))
            else:
                plan.penalty += cfg.editor_error_penalty
                if cfg.on_editor_error == "truncate":
                    plan.truncated = True
        plan.terminated = plan.stop
        plan.truncated = plan.truncated or (not plan.terminated and self._step >= cfg.max_steps)
        self._done = plan.terminated or plan.truncated
        self._frames.append(self._current_obs)
        if self.reward_fn is not None and (self._done or cfg.reward_mode != "terminal"):
            plan.reward_input = self.reward_input(terminated=plan.terminated)
        return plan

    def reward_input(self, *, terminated: bool = False, extra_raw_actions: Sequence[str] = (),
                     extra_invalid: int = 0) -> RewardInput:
        """The :class:`RewardInput` of the episode as it stands now.

        ``extra_raw_actions`` / ``extra_invalid`` count answers the caller received but did not step
        (e.g. a malformed final answer of a multi-turn GRPO rollout), so they can be scored too.
        """
        return RewardInput(
            source=self._source, edited=self._current, instruction=self._task.instruction,
            trajectory=list(self._history), task=self._task,
            raw_actions=list(self._raw_actions) + list(extra_raw_actions),
            invalid_actions=self._invalid + extra_invalid, terminated=terminated, step=self._step)

    def finish_step(self, plan: StepPlan, reward_output: RewardOutput | None):
        """Phase 4: the ``(obs, reward, terminated, truncated, info)`` tuple of the step.

        ``reward_mode='delta'`` pays the change of the score since the last SCORED step; an unscored step
        (the reward could not score it) pays only its penalty and leaves the reference score unchanged.
        """
        reward = float(plan.penalty)
        info = self._info(instruction=plan.instruction, valid=plan.invalid_reason is None,
                          invalid_reason=plan.invalid_reason, stop=plan.stop, penalty=plan.penalty, seed=plan.seed,
                          outcome=plan.outcome, reward_s=plan.reward_s, reward_output=reward_output)
        if info["reward_scored"]:
            score = info["reward_total"]
            if self.config.reward_mode == "delta":
                reward += score - self._last_score
                self._last_score = score
            else:
                reward += score
        return self._observation(), reward, plan.terminated, plan.truncated, info

    def step(self, action: str, *, raw_action: str | None = None):
        plan = self.plan_step(action, raw_action)
        execute_edits(self.editor, [plan], [self.config.reject_blank_outputs])
        self.apply_edit(plan)
        (reward_output,) = score_batch(self.reward_fn, [plan])
        return self.finish_step(plan, reward_output)

    # ------------------------------------------------------------------ render
    def render(self):
        """The current frame (``rgb_array``), (H, W, 3) uint8; None without a render mode."""
        if self.render_mode != "rgb_array":
            return None
        if not self._frames:
            return np.zeros((self.config.height, self.config.width, 3), np.uint8)
        return self._frames[-1].copy()

    def episode_frames(self) -> list[np.ndarray]:
        """I0, I1, ... of the episode so far, (H, W, 3) uint8 each."""
        return [frame.copy() for frame in self._frames]

    def episode_strip(self) -> np.ndarray:
        """The episode's frames side by side, (H, W * (steps + 1), 3) uint8."""
        if not self._frames:
            return np.zeros((self.config.height, self.config.width, 3), np.uint8)
        return image_strip(self._frames)
