"""Agent specs (the strings users type in ``mira run`` / ``mira eval``) -> :class:`~mira_env.agents.base.Agent` objects.

===============================  ===========================================================
spec                             agent
===============================  ===========================================================
``oracle``                       :class:`mira_env.agents.baselines.ScriptedOracleAgent` (shapes world)
``one-shot``                     :class:`mira_env.agents.baselines.OneShotAgent` (C as one edit, then stop)
``random``                       :class:`mira_env.agents.baselines.RandomAgent` (seeded)
``no-op``                        :class:`mira_env.agents.baselines.NoOpAgent` (``<STOP>`` at once: the baseline row)
``vlm:<hub id or local path>``   :class:`mira_env.agents.vlm.VLMAgent`
``vlm:tiny`` / ``vlm:tiny-<kind>``  a tiny random VLM built offline (:mod:`mira_env.tiny.vlm`), for smoke runs
``api:<model>@<base_url>``       :class:`mira_env.agents.api.APIAgent` (an OpenAI-compatible chat endpoint)
``pkg.module:Class``             your own agent: a class or factory, called with ``seed=`` when it takes one
a plugin name                    an agent a package registers in entry-point group ``mira_env.agents``
===============================  ===========================================================

An agent is any object with ``act(observations, infos) -> list[str]`` (and optionally ``reset(n)``); a plugin
need not import this package.

Heavy modules (torch, transformers) are imported only when a spec that needs them is built.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Mapping, Sequence

from mira_env.errors import ConfigError, describe

BASELINES = {"oracle": "ScriptedOracleAgent", "one-shot": "OneShotAgent", "random": "RandomAgent",
             "no-op": "NoOpAgent"}
SPEC_FORMS = ("oracle", "one-shot", "random", "no-op", "vlm:<hub id or local path>", "vlm:tiny",
              "api:<model>@<base_url>", "pkg.module:Class")
#: the agent of the baseline row of ``mira run`` / ``mira eval`` tables
BASELINE_AGENT = "no-op"
DEFAULT_AGENTS = ("oracle", "one-shot", "random")


def split_specs(text: str | Sequence[str]) -> list[str]:
    """``"oracle,random"`` or ``["oracle", "random,one-shot"]`` -> ``["oracle", "random", "one-shot"]``.

    Duplicates are refused (two agents with one name would share their episode keys).
    """
    parts = [text] if isinstance(text, str) else list(text)
    specs = [piece.strip() for part in parts for piece in str(part).split(",") if piece.strip()]
    if not specs:
        raise ConfigError(f"no agent given in {describe(text)}; use e.g. --agents oracle,one-shot,random")
    seen = set()
    for spec in specs:
        if spec in seen:
            raise ConfigError(f"agent spec {spec!r} is given twice; list every agent once")
        seen.add(spec)
    return specs


def tiny_vlm_path(kind: str = "qwen2_5_vl", seed: int = 0) -> Path:
    """Build (once; cached under ``$MIRA_TINY_CACHE``) the tiny VLM ``kind`` and return its folder."""
    from mira_env.tiny.vlm import build_tiny_vlm, default_path

    return Path(build_tiny_vlm(kind, default_path(kind, seed), seed=seed))


def parse_api_spec(spec: str) -> tuple[str, str]:
    """``"api:gpt-4o@http://host:8000/v1"`` -> ``("gpt-4o", "http://host:8000/v1")``."""
    body = spec[len("api:"):]
    model, at, base_url = body.rpartition("@") if "@" in body else ("", "", "")
    if not at or not model or not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"agent spec {spec!r} is not api:<model>@<base_url>; write e.g. "
                          f"api:Qwen/Qwen2.5-VL-7B-Instruct@http://localhost:8000/v1")
    return model, base_url


def make_agent(spec: str, *, seed: int = 0, vlm_options: Mapping[str, Any] | None = None,
               api_options: Mapping[str, Any] | None = None) -> Any:
    """Build the agent of ``spec`` (see the module table). ``seed`` seeds ``random`` and sampling VLMs.

    ``vlm_options`` go to :class:`~mira_env.agents.vlm.VLMAgent` (``device``, ``max_new_tokens``, ...),
    ``api_options`` to the API agent (``api_key``, ``timeout``, ...).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"agent spec {describe(spec)} must be one of: {', '.join(SPEC_FORMS)}")
    spec = spec.strip()
    if spec in BASELINES:
        from mira_env.agents import baselines

        cls = getattr(baselines, BASELINES[spec])
        agent = cls(seed=seed) if spec == "random" else cls()
    elif spec.startswith("vlm:"):
        target = spec[len("vlm:"):].strip()
        if not target:
            raise ConfigError(f"agent spec {spec!r} names no model; write vlm:<hub id or local path> or vlm:tiny")
        if target == "tiny" or target.startswith("tiny-"):
            kind = "qwen2_5_vl" if target == "tiny" else target[len("tiny-"):]
            target = str(tiny_vlm_path(kind))
        from mira_env.agents.vlm import VLMAgent

        options = dict(vlm_options or {})
        options.setdefault("seed", seed)
        agent = VLMAgent(target, **options)
    elif spec.startswith("api:"):
        model, base_url = parse_api_spec(spec)
        try:
            from mira_env.agents.api import APIAgent
        except ImportError as exc:
            raise ConfigError(f"agent spec {spec!r} needs mira_env.agents.api.APIAgent, which this install lacks "
                              f"({exc})") from exc
        agent = APIAgent(base_url=base_url, model=model, **dict(api_options or {}))
    else:
        from mira_env.plugins import AGENT_GROUP, is_import_path, load_object, load_plugin, plugin_names

        if is_import_path(spec):
            return build_agent(load_object(spec, what="agent spec"), spec, seed)
        factory = load_plugin(AGENT_GROUP, spec, what="agent")
        if factory is None:
            installed = ", ".join(plugin_names(AGENT_GROUP)) or "none"
            raise ConfigError(f"agent spec {describe(spec)} is not one of: {', '.join(SPEC_FORMS)}, or an agent "
                              f"plugin (entry-point group {AGENT_GROUP!r}; installed: {installed})")
        agent = build_agent(factory, spec, seed)
    return agent


def build_agent(target: Any, spec: str, seed: int = 0) -> Any:
    """The agent ``target`` gives: an agent object as is, else ``target(seed=seed)`` (``target()`` when it takes
    no seed) for a class or factory. :class:`ConfigError` when the result has no ``act`` method."""
    from mira_env.plugins import call_with_supported

    if not inspect.isclass(target) and callable(getattr(target, "act", None)):
        return target
    if not callable(target):
        raise ConfigError(f"agent spec {spec!r} names {describe(target)}, which is neither an agent (an act method) "
                          f"nor a class or factory that builds one")
    agent = call_with_supported(target, seed=seed)
    if not callable(getattr(agent, "act", None)):
        raise ConfigError(f"agent spec {spec!r} built {describe(agent)}, which has no act(observations, infos) "
                          f"method")
    return agent


def make_agents(specs: str | Sequence[str], **kwargs: Any) -> dict[str, Any]:
    """``{spec: agent}`` for every spec (the spec is the agent's name in the run records)."""
    return {spec: make_agent(spec, **kwargs) for spec in split_specs(specs)}


def resolve_agents(agents: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
    """``{name: agent}`` from ``{name: agent object or spec}`` (the Python API of ``mira run`` / ``mira eval``):
    objects are used as given, strings built with :func:`make_agent`. Names are the agents' record names."""
    if not isinstance(agents, Mapping) or not agents:
        raise ConfigError(f"agents={describe(agents)} must be a non-empty mapping of name -> agent object or spec")
    resolved = {}
    for name, agent in agents.items():
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"agent name {describe(name)} must be a non-empty str")
        resolved[name] = make_agent(agent, **kwargs) if isinstance(agent, str) else build_agent(agent, name)
    return resolved


def parse_options(pairs: Sequence[str] | None, what: str) -> dict[str, Any]:
    """``["device=cuda", "steps=4", "offload=true"]`` -> ``{"device": "cuda", "steps": 4, "offload": True}``.

    Values are read as JSON when they parse (numbers, booleans, null, lists), else kept as text.
    """
    import json

    options: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, value = str(pair).partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{what} option {pair!r} is not key=value; write e.g. --{what}-option device=cuda")
        try:
            options[key.strip()] = json.loads(value)
        except ValueError:
            options[key.strip()] = value
    return options


def trained_step_budget(specs: Sequence[str]) -> int | None:
    """The edit budget the ``vlm:<folder>`` policies among ``specs`` were trained with (their ``mira_policy.json``).

    ``None`` when no spec names a folder with a policy record. Policies trained with different budgets cannot share
    one evaluation's step limit: that is an error naming them and the fix (``--max_steps``).
    """
    from mira_env.agents.prompt import read_policy_record

    budgets: dict[str, int] = {}
    for spec in specs:
        if isinstance(spec, str) and spec.startswith("vlm:"):
            budget = read_policy_record(spec[len("vlm:"):].strip()).get("edit_budget")
            if isinstance(budget, int) and not isinstance(budget, bool):
                budgets[spec] = budget
    if len(set(budgets.values())) > 1:
        raise ConfigError(f"the policies were trained with different edit budgets {budgets}; pass --max_steps N to "
                          "evaluate them under one step limit")
    return next(iter(budgets.values()), None)


__all__ = ["BASELINES", "BASELINE_AGENT", "DEFAULT_AGENTS", "SPEC_FORMS", "build_agent", "make_agent", "make_agents",
           "parse_api_spec", "parse_options", "resolve_agents", "split_specs", "tiny_vlm_path", "trained_step_budget"]
