"""``make_shapes_env``: the shapes world as an :class:`~mira_env.env.EditEnv` (``gymnasium.make("mira/Shapes-v0")``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mira_env.config import EditEnvConfig
from mira_env.env import EditEnv
from mira_env.errors import ConfigError, describe
from mira_env.reward_api import RewardFunction
from mira_env.shapes.editor import ShapesEditor
from mira_env.shapes.generator import ShapesTaskConfig, ShapesTaskGenerator
from mira_env.shapes.noise import EditorNoise
from mira_env.shapes.oracle import ShapesOracleReward
from mira_env.shapes.render import resolution_hw

if TYPE_CHECKING:
    from mira_env.vector import BatchedEditEnv

#: step budget of shapes episodes: room for the longest program (5 edits) plus corrections
DEFAULT_MAX_STEPS = 10


def make_reward(reward: Any) -> RewardFunction | None:
    """``None``, ``"oracle"`` (a :class:`ShapesOracleReward`) or any object with ``score(items)``."""
    if reward is None:
        return None
    if reward == "oracle":
        return ShapesOracleReward()
    if callable(getattr(reward, "score", None)):
        return reward
    raise ConfigError(f"reward={describe(reward)}: expected None, 'oracle' or an object with score(items)")


def make_shapes_env(split: str = "train", difficulty: int | None = None, num_tasks: int | None = None,
                    seed: int = 0, noise: EditorNoise | dict | float | None = None, resolution: int | tuple = 128,
                    max_steps: int = DEFAULT_MAX_STEPS, reward: Any = "oracle", render_mode: str | None = None,
                    tasks: Any = None, min_objects: int = 2, max_objects: int = 6,
                    **env_options: Any) -> EditEnv:
    """The shapes world as an :class:`EditEnv`.

    Args:
        split, difficulty, num_tasks, seed, min_objects, max_objects: the task generator
            (:class:`~mira_env.shapes.generator.ShapesTaskConfig`); ``seed`` seeds the generator, the
            episode seeds come from ``reset(seed=...)``.
        noise: editor noise (:class:`EditorNoise`, a dict of its fields, one probability, or ``None``).
        resolution: image size, an int or ``(height, width)``; observations use it too (no resizing).
        max_steps: step budget per episode.
        reward: ``"oracle"`` (the default: the exact ground-truth score), ``None`` (penalties only) or a
            :class:`~mira_env.reward_api.RewardFunction`.
        tasks: a ready task source instead of the generator (e.g. a shared ShapesTaskGenerator).
        env_options: any other :class:`~mira_env.config.EditEnvConfig` field (``reward_mode``, ...).
    """
    height, width = resolution_hw(resolution)
    for name in ("height", "width", "reject_blank_outputs"):
        if name in env_options:
            raise ConfigError(f"{name}= is fixed by the shapes world (use resolution=); remove it")
    if tasks is None:
        tasks = ShapesTaskGenerator(ShapesTaskConfig(split=split, num_tasks=num_tasks, difficulty=difficulty,
                                                     seed=seed, resolution=(height, width),
                                                     min_objects=min_objects, max_objects=max_objects))
    config = EditEnvConfig.from_kwargs(None, height=height, width=width, max_steps=max_steps,
                                       reject_blank_outputs=False, **env_options)
    return EditEnv(editor=ShapesEditor(noise=noise), tasks=tasks, reward=make_reward(reward),
                   render_mode=render_mode, config=config)


def make_shapes_vector_env(num_envs: int, max_episode_steps: int | None = None, copy: bool = True,
                           **kwargs: Any) -> "BatchedEditEnv":
    """``num_envs`` shapes environments batched in one :class:`~mira_env.vector.BatchedEditEnv` (one editor, one
    reward): the vector entry point of ``mira/Shapes-v0``; ``kwargs`` are :func:`make_shapes_env`'s."""
    from mira_env.vector import BatchedEditEnv

    return BatchedEditEnv(num_envs, env_fn=lambda: make_shapes_env(**kwargs), copy=copy,
                          max_episode_steps=max_episode_steps)


__all__ = ["DEFAULT_MAX_STEPS", "make_reward", "make_shapes_env", "make_shapes_vector_env"]
