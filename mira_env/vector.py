"""``BatchedEditEnv``: N editing environments whose edits go to the editor in ONE batched call.

Every step, the actions of all environments are validated, the edits are sent in one
``editor.edit`` call and the finished episodes (or every step, per ``reward_mode``) are scored in
one ``reward.score`` call. It follows ``gymnasium.vector.SyncVectorEnv``'s conventions (NEXT_STEP
autoreset, batched ``infos`` with ``_key`` masks) and adds what GRPO needs:

- :meth:`reset_group`: every environment on the same task with the same editor seeds;
- :meth:`step_active`: step only some environments (finished episodes leave the batch).

``info`` has the same keys with the same types in every environment at every step (see
:meth:`mira_env.env.EditEnv._info`); batched, every key is an object array with a ``_key`` mask, and
``reward_components`` a dict of such arrays. ``gymnasium.make_vec(id, num_envs=N,
vectorization_mode="vector_entry_point")`` builds this class for both registered ids, with ONE editor
(``"sync"`` mode builds N environments and so N editors).
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any, Callable, Sequence

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array, iterate

from mira_env.env import EditEnv, step_many
from mira_env.errors import ConfigError
from mira_env.validate import check_int
from mira_env.tasks.task import Task


class BatchedEditEnv(VectorEnv):
    """A vector of :class:`EditEnv` sharing one editor and one reward function.

    Args:
        num_envs: number of environments (the batch size of editor calls).
        env_fn: builds one environment; called once, the others are its clones (:meth:`EditEnv.clone`: its
            editor, reward, tasks and config). Alternatively pass ``env_kwargs`` for :class:`EditEnv` directly,
            or use :meth:`from_env` / :func:`mira_env.factory.make_batched`.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": ["rgb_array"]}

    def __init__(self, num_envs: int, env_fn: Callable[[], EditEnv] | None = None, copy: bool = True,
                 max_episode_steps: int | None = None, **env_kwargs: Any) -> None:
        check_int("num_envs", num_envs)
        if env_fn is not None and env_kwargs:
            raise ConfigError("pass either env_fn or EditEnv keyword arguments, not both")
        first = env_fn() if env_fn is not None else EditEnv(**env_kwargs)
        first = first.unwrapped
        if not isinstance(first, EditEnv):
            raise ConfigError(f"env_fn must build an EditEnv (wrappers are not batched), got {type(first).__name__}")
        if max_episode_steps is not None and max_episode_steps != first.config.max_steps:
            raise ConfigError(f"max_episode_steps={max_episode_steps!r} differs from max_steps="
                              f"{first.config.max_steps}; the step budget is max_steps (it scores the episode "
                              f"when it ends): pass max_steps={max_episode_steps!r} instead")
        self.envs: list[EditEnv] = [first] + [first.clone() for _ in range(num_envs - 1)]
        self.num_envs = num_envs
        self.copy = copy
        self.editor = first.editor
        self.reward_fn = first.reward_fn
        self.config = first.config
        self.render_mode = first.render_mode
        self.autoreset_mode = AutoresetMode.NEXT_STEP
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._observations = create_empty_array(self.single_observation_space, n=num_envs, fn=np.zeros)
        # until an env is reset its slot holds an empty observation, so partial resets can batch
        self._env_obs: list[Any] = list(iterate(self.observation_space, create_empty_array(
            self.single_observation_space, n=num_envs, fn=np.zeros)))
        self._rewards = np.zeros(num_envs, dtype=np.float64)
        self._terminations = np.zeros(num_envs, dtype=np.bool_)
        self._truncations = np.zeros(num_envs, dtype=np.bool_)
        self._autoreset_envs = np.zeros(num_envs, dtype=np.bool_)

    @classmethod
    def from_env(cls, env: EditEnv, num_envs: int, copy: bool = True) -> "BatchedEditEnv":
        """``env`` and ``num_envs - 1`` of its clones (:meth:`EditEnv.clone`): one editor, one reward, one task set."""
        return cls(num_envs, env_fn=lambda: env, copy=copy)

    @property
    def tasks(self):
        """The shared task source."""
        return self.envs[0].tasks

    # ------------------------------------------------------------------ reset
    def reset(self, *, seed: int | Sequence[int | None] | None = None, options: dict | None = None):
        if seed is None or isinstance(seed, int):
            seeds = [None if seed is None else seed + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ConfigError(f"reset got {len(seeds)} seeds for {self.num_envs} envs")
        infos: dict[str, Any] = {}
        for index, (env, env_seed) in enumerate(zip(self.envs, seeds)):
            self._env_obs[index], info = env.reset(seed=env_seed, options=options)
            infos = self._add_info(infos, info, index)
        self._rewards[:] = 0
        self._terminations[:] = False
        self._truncations[:] = False
        self._autoreset_envs[:] = False
        return self._batched_obs(), infos

    def reset_group(self, task: Task | int | str | None = None, seed: int | None = None,
                    indices: Sequence[int] | None = None):
        """Reset ``indices`` (default: all) to ONE task with ONE editor seed: a GRPO group.

        The task (when not given) and the editor seed are drawn from the first environment's
        ``np_random`` after seeding it with ``seed``, so a group is reproducible from ``seed``.
        """
        indices = list(range(self.num_envs)) if indices is None else list(indices)
        lead = self.envs[indices[0]]
        lead.reset(seed=seed, options={"task": task} if task is not None else None)
        options = {"task": lead.task, "editor_seed": lead.episode_seed}
        infos: dict[str, Any] = {}
        for index in indices:
            self._env_obs[index], info = self.envs[index].reset(options=options)
            infos = self._add_info(infos, info, index)
            self._rewards[index] = 0
            self._terminations[index] = self._truncations[index] = self._autoreset_envs[index] = False
        return self._batched_obs(), infos

    # ------------------------------------------------------------------ step
    def step_active(self, indices: Sequence[int], actions: Sequence[str]) -> list[tuple]:
        """Step only ``indices`` with ``actions``: one editor call and one reward call for all of them.

        Returns one ``(obs, reward, terminated, truncated, info)`` tuple per index. No autoreset.
        """
        indices = [int(i) for i in indices]
        if len(indices) != len(actions):
            raise ConfigError(f"step_active got {len(indices)} indices and {len(actions)} actions")
        repeated = sorted({i for i in indices if indices.count(i) > 1})
        if repeated:
            raise ConfigError(f"step_active indices {indices} repeat {repeated}: each environment steps at most "
                              f"once per call (step the next action in another call)")
        bad = [i for i in indices if not 0 <= i < self.num_envs]
        if bad:
            raise ConfigError(f"step_active indices {bad} are out of range for {self.num_envs} environments")
        envs = [self.envs[i] for i in indices]
        results = step_many(envs, actions, editors=[self.editor] * len(envs))
        for index, result in zip(indices, results):
            self._env_obs[index] = result[0]
            self._rewards[index], self._terminations[index], self._truncations[index] = result[1:4]
            self._autoreset_envs[index] = result[2] or result[3]
        return results

    def step(self, actions):
        actions = list(iterate(self.action_space, actions)) if not isinstance(actions, (list, tuple)) else actions
        if len(actions) != self.num_envs:
            raise ConfigError(f"step got {len(actions)} actions for {self.num_envs} envs")
        infos: dict[str, Any] = {}
        to_step = []
        for index in range(self.num_envs):
            if self._autoreset_envs[index]:
                self._env_obs[index], info = self.envs[index].reset()
                self._rewards[index] = 0.0
                self._terminations[index] = self._truncations[index] = False
                infos = self._add_info(infos, info, index)
            else:
                to_step.append(index)
        results = self.step_active(to_step, [actions[i] for i in to_step]) if to_step else []
        for index, result in zip(to_step, results):
            infos = self._add_info(infos, result[4], index)
        self._autoreset_envs = np.logical_or(self._terminations, self._truncations)
        return (self._batched_obs(), np.copy(self._rewards), np.copy(self._terminations),
                np.copy(self._truncations), infos)

    def _add_info(self, vector_infos: dict[str, Any], env_info: dict[str, Any], env_num: int) -> dict[str, Any]:
        """Like ``VectorEnv._add_info`` but with object arrays throughout.

        Editing infos mix ``None`` with numbers and strings across environments (an unscored reward,
        an invalid reason), which the base class's dtype inference cannot hold. Plain dicts (``reward_components``,
        ``state``) become dicts of arrays; read-only mappings (``editor_status``) stay whole, one per env.
        """
        for key, value in env_info.items():
            mask = vector_infos.get(f"_{key}")
            if mask is None:
                mask = vector_infos[f"_{key}"] = np.zeros(self.num_envs, dtype=np.bool_)
            if type(value) is dict:
                nested = vector_infos.get(key)
                vector_infos[key] = self._add_info(nested if isinstance(nested, dict) else {}, value, env_num)
            else:
                array = vector_infos.get(key)
                if not isinstance(array, np.ndarray) or array.dtype != object:
                    array = vector_infos[key] = np.full(self.num_envs, None, dtype=object)
                array[env_num] = value
            mask[env_num] = True
        return vector_infos

    def _batched_obs(self):
        self._observations = concatenate(self.single_observation_space, self._env_obs, self._observations)
        return deepcopy(self._observations) if self.copy else self._observations

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return tuple(env.render() for env in self.envs)

    def close_extras(self, **kwargs: Any) -> None:
        for env in self.envs:
            env.close()
