"""Any reward term or composite as a TRL ``reward_funcs`` callable.

``TRLRewardFunction(reward)(prompts=..., completions=..., **columns) -> list[float | None]``, with a
``__name__`` (TRL logs ``rewards/<__name__>/mean``). ``None`` becomes NaN in TRL, which ignores it.

What it reads, per row (the ``GRPOTrainer`` passes every dataset column as a keyword list):

- the completion: a string, or a conversational completion (its last message's text); it goes to
  ``RewardInput.raw_actions`` (so ``format`` scores it) and its ``<edit>...</edit>`` instruction is
  read with :func:`mira_env.actions.extract_edit` (``<STOP>`` or no block = no edit);
- ``image_column`` (default ``"image"``): the source image I0 (a PIL image, or a list whose first
  element is one, as in TRL's ``images`` column, or a ``datasets`` ``Image`` feature's decoded value);
- ``editor_state`` (:data:`mira_env.editors.state.STATE_COLUMN`): the editor's per-image state (the shapes
  world's scene) as JSON, which a ``datasets`` image column cannot carry; it is attached to I0 before the
  editor and the reward see it (:func:`mira_env.editors.state.attach_column_state`);
- ``edited_column`` (default ``"edited_image"``): the edited image when the dataset has it;
  otherwise ``editor`` (any :class:`mira_env.editors.base.Editor`) executes the parsed instruction
  on I0 in ONE batched call (seeds from ``seed_column``, default ``"seed"``, else 0); otherwise
  the source itself (a ``<STOP>``/no-edit episode);
- ``instruction_column`` (default ``"instruction"``): C; else the prompt's text;
- ``"task_id"`` and ``"metadata"`` (a dict) / ``"target_scene"`` columns when present, into the Task.

Failures: an editor error (an exception, or an output that is not an image) scores the affected rows None with
the reason logged and kept in :attr:`TRLRewardFunction.last_errors`; nothing raises inside ``reward_funcs`` for
it. Columns whose length differs from the number of completions, or an editor that returns another number of
images than it was given, are a :class:`~mira_env.rewards.errors.RewardConfigError` naming them.

``component=`` returns one component of a composite instead of its total. When TRL passes
``log_metric``, the batch mean of every component is logged as ``<__name__>/<component>``.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Sequence

from PIL import Image

from mira_env.actions import extract_edit
from mira_env.editors.state import STATE_COLUMN, attach_column_state
from mira_env.reward_api import RewardInput
from mira_env.tasks.task import Task

from mira_env.rewards.errors import RewardConfigError, describe

logger = logging.getLogger(__name__)


def completion_text(completion: Any) -> str:
    """The text of a completion: a str, or the last message of a conversational completion."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content", "")
        if isinstance(content, list):
            return "".join(part.get("text", "") for part in content if isinstance(part, dict))
        return str(content)
    return str(completion)


def _prompt_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, Sequence):
        texts = [completion_text([m]) for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        return texts[-1] if texts else ""
    return str(prompt)


def _as_image(value: Any, what: str) -> Image.Image:
    if isinstance(value, (list, tuple)) and value:
        value = value[0]
    if not isinstance(value, Image.Image):
        raise RewardConfigError(f"{what} is {describe(value)}, expected a PIL image (or a list starting with one)")
    return value.convert("RGB") if value.mode != "RGB" else value


class TRLRewardFunction:
    """A TRL reward function around a term or a composite (see the module docstring)."""

    def __init__(self, reward: Any, name: str | None = None, component: str | None = None, editor: Any = None,
                 image_column: str = "image", edited_column: str = "edited_image",
                 instruction_column: str = "instruction", seed_column: str = "seed") -> None:
        if not callable(getattr(reward, "score", None)):
            raise RewardConfigError(f"reward={describe(reward)} has no score(items) method")
        if editor is not None and not callable(getattr(editor, "edit", None)):
            raise RewardConfigError(f"editor={describe(editor)} has no edit(images, instructions, seeds) method")
        self.reward, self.component, self.editor = reward, component, editor
        self.image_column, self.edited_column = image_column, edited_column
        self.instruction_column, self.seed_column = instruction_column, seed_column
        self.__name__ = name or (f"{getattr(reward, 'name', type(reward).__name__)}"
                                 + (f"_{component}" if component else ""))
        self.is_composite = hasattr(reward, "terms")
        #: row index -> why the last call scored that row None (editor failures)
        self.last_errors: dict[int, str] = {}

    def action(self, text: str) -> str | None:
        """The atomic instruction in ``text``; ``None`` for ``<STOP>`` or no match."""
        return extract_edit(text)

    def build_inputs(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[RewardInput]:
        """The :class:`RewardInput` of every row (see the module docstring for the columns read)."""
        n = len(completions)
        if self.image_column not in kwargs:
            raise RewardConfigError(f"the dataset has no {self.image_column!r} column with the source images; "
                                    f"columns passed: {sorted(k for k in kwargs if not k.startswith('log_'))}; "
                                    "set image_column=")
        self._check_lengths(n, prompts, kwargs)
        sources = [_as_image(v, f"{self.image_column}[{i}]") for i, v in enumerate(kwargs[self.image_column])]
        if STATE_COLUMN in kwargs:
            sources = [attach_column_state(image, kwargs[STATE_COLUMN][i]) for i, image in enumerate(sources)]
        texts = [completion_text(c) for c in completions]
        actions = [self.action(t) for t in texts]
        self.last_errors = {}
        if self.edited_column in kwargs:
            edited = [_as_image(v, f"{self.edited_column}[{i}]") for i, v in enumerate(kwargs[self.edited_column])]
        else:
            edited = list(sources)
            todo = [i for i, a in enumerate(actions) if a is not None]
            if self.editor is not None and todo:
                seeds = kwargs.get(self.seed_column) or [0] * n
                try:
                    outputs = list(self.editor.edit([sources[i] for i in todo], [actions[i] for i in todo],
                                                    [int(seeds[i]) for i in todo]))
                except Exception as exc:  # noqa: BLE001 - an editor failure scores its rows None, never raises
                    label = (getattr(getattr(self.editor, "info", None), "name", None)
                             or getattr(self.editor, "name", None) or type(self.editor).__name__)
                    reason = f"editor {label} failed: {type(exc).__name__}: {exc}"
                    outputs = [None] * len(todo)
                    for i in todo:
                        self.last_errors[i] = reason
                    logger.warning("%s: %s (%d rows scored None)", self.__name__, reason, len(todo))
                if len(outputs) != len(todo):
                    raise RewardConfigError(f"editor {describe(self.editor)} returned {len(outputs)} images for "
                                            f"{len(todo)} edits; an Editor returns one image per input")
                for i, image in zip(todo, outputs):
                    if isinstance(image, Image.Image):
                        edited[i] = image
                    elif i not in self.last_errors:
                        self.last_errors[i] = f"editor returned {describe(image)} instead of an image"
                        logger.warning("%s: row %d: %s", self.__name__, i, self.last_errors[i])
        instructions = kwargs.get(self.instruction_column) or [_prompt_text(p) for p in prompts]
        items = []
        for i in range(n):
            metadata = dict(kwargs["metadata"][i] or {}) if "metadata" in kwargs else {}
            if "target_scene" in kwargs:
                metadata["target_scene"] = kwargs["target_scene"][i]
            task_id = str(kwargs["task_id"][i]) if "task_id" in kwargs else f"trl-{i}"
            instruction = str(instructions[i]) or "(no instruction)"
            task = Task(id=task_id, instruction=instruction, image=sources[i], metadata=metadata)
            trajectory = [actions[i]] if actions[i] is not None and (self.editor is not None or
                                                                     self.edited_column in kwargs) else []
            items.append(RewardInput(source=sources[i], edited=edited[i], instruction=instruction,
                                     trajectory=trajectory, task=task, raw_actions=[texts[i]],
                                     terminated=True, step=len(trajectory)))
        return items

    def _check_lengths(self, n: int, prompts: Sequence[Any], kwargs: dict) -> None:
        columns = {"prompts": prompts, **{k: v for k, v in kwargs.items()
                                          if k in (self.image_column, self.edited_column, self.instruction_column,
                                                   self.seed_column, STATE_COLUMN, "task_id", "metadata",
                                                   "target_scene")}}
        wrong = {name: len(value) for name, value in columns.items()
                 if value is not None and hasattr(value, "__len__") and len(value) != n}
        if wrong:
            raise RewardConfigError(f"columns {sorted(wrong)} have lengths {wrong}, not one value per completion "
                                    f"({n} completions)")

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        items = self.build_inputs(prompts, completions, **kwargs)
        if self.is_composite:
            outputs = self.reward.score(items)
            if self.component is not None:
                values = [o.components.get(self.component) for o in outputs]
            else:
                values = [o.total for o in outputs]
            log_metric = kwargs.get("log_metric")
            if callable(log_metric):
                for name in self.reward.names:
                    scored = [o.components.get(name) for o in outputs if o.components.get(name) is not None]
                    if scored:
                        log_metric(f"{self.__name__}/{name}", sum(scored) / len(scored))
        else:
            values = list(self.reward.score(items))
        return [None if v is None or i in self.last_errors or not math.isfinite(float(v)) else float(v)
                for i, v in enumerate(values)]

    def __repr__(self) -> str:
        return f"TRLRewardFunction({self.__name__!r}, reward={self.reward!r})"
