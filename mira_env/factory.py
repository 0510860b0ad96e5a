"""``mira_env.make``: ONE factory for every editing environment (the shapes world, a task file, a task source).

    import mira_env

    env = mira_env.make()                                     # the shapes world, oracle reward, 128 px
    env = mira_env.make("shapes", noise=0.2, split="test", num_tasks=50, max_steps=8)
    env = mira_env.make("shapes", editor="timbrooks/instruct-pix2pix", size=256)   # a real editor on shapes tasks
    env = mira_env.make("magicbrush.jsonl", editor="identity", reward=my_reward, size=256)
    twin = env.clone()                                        # shares editor, tasks, reward and config

Every command (``mira run``, ``mira eval``, GRPO, the learning experiment) builds its environment here, and
:class:`~mira_env.vector.BatchedEditEnv` copies it with :meth:`EditEnv.clone`. Rewards are objects (anything
with ``score(items)``) or ``"oracle"`` (the shapes world's exact score); build a composite from a YAML file with
``mira_env.rewards.build_reward(path)`` and pass it in (this core layer does not import the rewards layer).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from mira_env.config import EditEnvConfig
from mira_env.env import EditEnv
from mira_env.errors import ConfigError, describe

if TYPE_CHECKING:
    from mira_env.vector import BatchedEditEnv

#: ``tasks=`` value of the embedded shapes world
SHAPES = "shapes"
#: observation size of the shapes world when ``size`` is not given (its render size)
SHAPES_SIZE = 128
#: keyword arguments that configure the shapes-world task generator only
_GENERATOR_ARGS = ("split", "difficulty", "num_tasks")

_DEFAULT = object()


def _is_shapes_editor(editor: Any) -> bool:
    """``None`` or ``"shapes"``: the shapes editor, built here with ``noise`` (an editor object is used as given)."""
    return editor is None or (isinstance(editor, str) and editor == SHAPES)


def make(tasks: Any = SHAPES, *, editor: Any = None, reward: Any = _DEFAULT, size: int | tuple[int, int] | None = None,
         max_steps: int | None = None, noise: Any = None, split: str | None = None, difficulty: int | None = None,
         num_tasks: int | None = None, seed: int = 0, render_mode: str | None = None,
         editor_options: dict | None = None, **options: Any) -> EditEnv:
    """An :class:`EditEnv` for ``tasks`` with ``editor`` and ``reward``.

    Args:
        tasks: ``"shapes"`` (the embedded world; ``split`` / ``difficulty`` / ``num_tasks`` / ``seed`` configure its
            generator), a ``.jsonl`` path, an image / records / saved-datasets folder, a list of tasks or a
            :class:`~mira_env.tasks.TaskSource`.
        editor: an :class:`~mira_env.editors.base.Editor` or a spec for :func:`mira_env.editors.make_editor`.
            ``None`` or ``"shapes"`` is the shapes-world editor (``noise`` applies to it only); any other task
            source needs one.
        reward: ``None`` (penalties only), ``"oracle"`` (the shapes world's exact score) or an object with
            ``score(items)``. Default: ``"oracle"`` with the shapes editor or shapes tasks, ``None`` otherwise.
        size: observation size, an int or ``(height, width)``; default 128 with the shapes editor (its render
            size), else :class:`~mira_env.config.EditEnvConfig`'s 256.
        max_steps: the step budget T_max; default 10 with the shapes editor, else ``EditEnvConfig``'s 5.
        noise: the shapes editor's seeded noise (an :class:`~mira_env.shapes.noise.EditorNoise`, a dict of its
            fields or one probability).
        editor_options: keyword arguments for ``make_editor`` when ``editor`` is a spec.
        options: any other ``EditEnvConfig`` field (``reward_mode``, ``invalid_action_penalty``, ...).
    """
    from mira_env.shapes.env import DEFAULT_MAX_STEPS, make_reward, make_shapes_env
    from mira_env.shapes.render import resolution_hw

    shapes_tasks = isinstance(tasks, str) and tasks == SHAPES
    if editor is None and not shapes_tasks:
        raise ConfigError(f"tasks={_show(tasks)} needs an editor: pass editor=<Editor> or a spec ('identity', "
                          f"'shapes', a diffusers preset, hub id or local path, 'remote:http://host:port')")
    shapes_editor = _is_shapes_editor(editor)
    given = {name: value for name, value in (("split", split), ("difficulty", difficulty), ("num_tasks", num_tasks))
             if value is not None}
    if given and not shapes_tasks:
        raise ConfigError(f"{sorted(given)} configure the shapes-world task generator; tasks={_show(tasks)} is a "
                          f"task source of its own: remove them (or pass tasks='shapes')")
    if noise is not None and not shapes_editor:
        raise ConfigError(f"noise={describe(noise)} is the shapes editor's noise; editor={describe(editor)} has "
                          f"none: remove noise= (or use editor='shapes')")
    if editor_options and shapes_editor:
        raise ConfigError(f"editor_options {sorted(editor_options)} go to make_editor; the shapes editor takes "
                          f"noise= only")
    if reward is _DEFAULT:
        reward = "oracle" if shapes_editor or shapes_tasks else None
    elif isinstance(reward, str) and reward != "oracle":
        raise ConfigError(f"reward={reward!r}: pass None, 'oracle' or a reward object; for a YAML reward config "
                          f"build it first: reward=mira_env.rewards.build_reward({reward!r})")
    if shapes_editor:
        generator = {"split": split or "train", "num_tasks": num_tasks, "seed": seed}
        if difficulty is not None:
            generator["difficulty"] = difficulty
        return make_shapes_env(**generator, noise=noise, resolution=SHAPES_SIZE if size is None else size,
                               max_steps=DEFAULT_MAX_STEPS if max_steps is None else max_steps, reward=reward,
                               render_mode=render_mode, tasks=None if shapes_tasks else tasks, **options)
    from mira_env.editors import make_editor

    if shapes_tasks:
        from mira_env.shapes.generator import ShapesTaskConfig, ShapesTaskGenerator

        height, width = resolution_hw(SHAPES_SIZE if size is None else size)
        config = ShapesTaskConfig(split=split or "train", num_tasks=num_tasks, difficulty=difficulty, seed=seed,
                                  resolution=(height, width))
        tasks = ShapesTaskGenerator(config)
    else:
        height, width = _size(size)
    if max_steps is not None:
        options["max_steps"] = max_steps
    if shapes_tasks and max_steps is None:
        options["max_steps"] = DEFAULT_MAX_STEPS
    env_config = EditEnvConfig.from_kwargs(None, height=height, width=width, **options)
    return EditEnv(editor=make_editor(editor, **dict(editor_options or {})), tasks=tasks, reward=make_reward(reward),
                   render_mode=render_mode, config=env_config)


def _show(tasks: Any) -> str:
    """A task path in full (a user must recognise it); anything else as :func:`describe` shows it."""
    return repr(os.fspath(tasks)) if isinstance(tasks, (str, os.PathLike)) else describe(tasks)


def _size(size: int | tuple[int, int] | None) -> tuple[int, int]:
    default = EditEnvConfig()
    if size is None:
        return default.height, default.width
    if isinstance(size, int) and not isinstance(size, bool):
        return size, size
    if isinstance(size, (tuple, list)) and len(size) == 2:
        return size[0], size[1]
    raise ConfigError(f"size={describe(size)} must be an int or a (height, width) pair")


def make_batched(num_envs: int, copy: bool = True, **kwargs: Any) -> "BatchedEditEnv":
    """``num_envs`` clones of ``make(**kwargs)`` in one :class:`~mira_env.vector.BatchedEditEnv` (one editor call
    per step for all of them)."""
    from mira_env.vector import BatchedEditEnv

    return BatchedEditEnv.from_env(make(**kwargs), num_envs, copy=copy)


__all__ = ["SHAPES", "SHAPES_SIZE", "make", "make_batched"]
