"""Plugin points: objects named by import path (``pkg.module:Class``) and packages that register their own.

A package registers agents and reward terms under these entry-point groups (``pyproject.toml``)::

    [project.entry-points."mira_env.agents"]
    my-policy = "my_pkg.agents:MyPolicy"          # then: mira run --agents my-policy

    [project.entry-points."mira_env.reward_terms"]
    sharpness = "my_pkg.rewards:Sharpness"        # then, in a reward YAML: terms: [{name: sharpness}]

The same objects work without registering, by import path: ``--agents my_pkg.agents:MyPolicy``,
``terms: [{name: "my_pkg.rewards:Sharpness"}]``. Entry points are read with :mod:`importlib.metadata`
each time a name is looked up (a package installed during the session is seen).
"""

from __future__ import annotations

import inspect
from importlib import metadata
from typing import Any, Callable

from mira_env.editors import IMPORT_SPEC, load_object
from mira_env.errors import ConfigError

#: entry-point group of agent plugins: ``name = "pkg.module:Class"`` (a class or a factory of an agent)
AGENT_GROUP = "mira_env.agents"
#: entry-point group of reward-term plugins: ``name = "pkg.module:Class"`` (a term class or a factory)
REWARD_TERM_GROUP = "mira_env.reward_terms"


def is_import_path(spec: Any) -> bool:
    """Whether ``spec`` reads as ``pkg.module:attr`` (a dotted module, a colon, a dotted attribute)."""
    return isinstance(spec, str) and IMPORT_SPEC.match(spec) is not None


def plugin_names(group: str) -> list[str]:
    """The names registered in entry-point ``group`` by the installed distributions, sorted."""
    return sorted({entry.name for entry in metadata.entry_points(group=group)})


def load_plugin(group: str, name: str, what: str) -> Any | None:
    """The object entry point ``name`` of ``group`` points at; ``None`` when no distribution registers it.

    Two distributions registering one name is an error naming both (which one wins would be an accident).
    """
    entries = [entry for entry in metadata.entry_points(group=group) if entry.name == name]
    if not entries:
        return None
    values = sorted({entry.value for entry in entries})
    if len(values) > 1:
        raise ConfigError(f"{what} {name!r} is registered twice in entry-point group {group!r}: {values}; "
                          f"uninstall one of the packages or name the object by import path")
    try:
        return entries[0].load()
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{what} {name!r} (entry point {entries[0].value!r} of group {group!r}) cannot be "
                          f"loaded: {exc}") from None


def accepts(factory: Callable[..., Any], name: str) -> bool:
    """Whether ``factory`` takes the keyword argument ``name`` (by name or through ``**kwargs``); False when its
    signature cannot be read (a builtin)."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD
               or (p.name == name and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)) for p in parameters)


def call_with_supported(factory: Callable[..., Any], **kwargs: Any) -> Any:
    """``factory(**kwargs)`` with only the keyword arguments it :func:`accepts` (optional shared settings such as
    ``seed``; never use it for user-given parameters, whose typos must fail)."""
    return factory(**{key: value for key, value in kwargs.items() if accepts(factory, key)})


__all__ = ["AGENT_GROUP", "REWARD_TERM_GROUP", "accepts", "call_with_supported", "is_import_path", "load_object", "load_plugin",
           "plugin_names"]
