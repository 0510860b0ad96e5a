"""The ``Agent`` protocol: who chooses the next atomic instruction, for a batch of episodes."""

from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence, runtime_checkable


@runtime_checkable
class Agent(Protocol):
    """A policy over a batch of ``EditEnv`` observations.

    ``observations[i]`` is one environment's observation dict (``source``, ``current``,
    ``instruction``, ``history``, ``step``); ``infos[i]`` its latest info dict (world-specific extras
    such as the shapes world's scenes live there). Returns one action per observation: an atomic
    instruction or ``"<STOP>"``. ``reset(n)`` (optional) is called when a new batch of ``n`` episodes
    starts.
    """

    name: str

    def act(self, observations: Sequence[Mapping[str, Any]],
            infos: Sequence[Mapping[str, Any]] | None = None) -> list[str]: ...
