"""Term registry and ``build_reward``: a :class:`~mira_env.rewards.config.RewardConfig` (or dict, or YAML path) -> CompositeReward.

Each registry entry is ``factory(spec, config, context) -> term``. ``spec.params`` become constructor
keyword arguments; the shared settings (``config.clip``, ``config.lpips``, ``config.judge``,
``config.device``) fill the rest, and ONE judge / ONE CLIP model is shared by all terms that use it.

Built-in names: ``clip_t``, ``clip_dir``, ``clip_i`` (:mod:`mira_env.rewards.clip`), ``lpips``
(:mod:`mira_env.rewards.lpips_term`), ``l1``, ``l2`` (:mod:`mira_env.rewards.pixel`), ``judge_sc``, ``judge_pq``,
``judge_overall`` (:mod:`mira_env.rewards.judge`), ``format``, ``step_cost``, ``invalid_action``
(:mod:`mira_env.rewards.rules`), ``oracle``, ``oracle_progress`` (:mod:`mira_env.rewards.oracle`), ``arniqa``,
``topiq`` (:mod:`mira_env.rewards.iqa`, the ``iqa`` extra), ``target_l1``, ``target_l2``, ``target_clip_i``
(:mod:`mira_env.rewards.target`: against the task's ground-truth target). Add your own with :func:`register_term`,
by import path in a config (``name: my_pkg.terms:Sharpness``, built with the spec's ``params``), or from a package
that registers it in entry-point group ``mira_env.reward_terms`` (:mod:`mira_env.plugins`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

from mira_env.rewards.composite import CompositeReward
from mira_env.rewards.errors import RewardConfigError, describe

Factory = Callable[[Any, Any, "BuildContext"], Any]


class BuildContext:
    """Objects shared by the terms of one ``build_reward`` call (the judge)."""

    def __init__(self, config) -> None:
        self.config = config
        self._judge = None

    def judge(self):
        """The one :class:`~mira_env.rewards.judge.VLMJudge` of this reward, built on first use."""
        if self._judge is None:
            self._judge = build_judge(self.config.judge, self.config.device)
        return self._judge


def build_judge(settings, device: str = "auto"):
    """A :class:`~mira_env.rewards.judge.VLMJudge` from :class:`~mira_env.rewards.config.JudgeSettings`."""
    from mira_env.rewards.judge.core import JudgeCache, VLMJudge

    if settings.backend == "transformers":
        if not settings.model:
            raise RewardConfigError("judge backend 'transformers' needs judge.model: a hub id such as "
                                    "'Qwen/Qwen2.5-VL-7B-Instruct' or a local folder")
        from mira_env.rewards.judge.transformers_backend import TransformersJudge

        backend = TransformersJudge(settings.model, device=device, dtype=settings.dtype,
                                    max_new_tokens=settings.max_new_tokens, batch_size=settings.batch_size,
                                    generate_kwargs=settings.generate_kwargs)
    elif settings.backend == "openai":
        if not settings.model or not settings.base_url:
            raise RewardConfigError("judge backend 'openai' needs judge.model (the endpoint's model name) and "
                                    f"judge.base_url (e.g. 'http://127.0.0.1:8000/v1'); got model={settings.model!r}, "
                                    f"base_url={settings.base_url!r}")
        from mira_env.rewards.judge.openai_backend import OpenAIJudge

        backend = OpenAIJudge(settings.model, base_url=settings.base_url, api_key_env=settings.api_key_env,
                              timeout_s=settings.timeout_s, max_retries=settings.max_retries,
                              concurrency=settings.concurrency, max_tokens=settings.max_new_tokens)
    else:
        from mira_env.rewards.judge.editscore_backend import EditScoreJudge

        backend = EditScoreJudge(**settings.editscore_kwargs)
    return VLMJudge(backend, JudgeCache(path=settings.cache_path))


def _clip(cls_name: str) -> Factory:
    def factory(spec, config, context):
        from mira_env.rewards import clip

        cls = getattr(clip, cls_name)
        kwargs = dict(model_name=config.clip.model_name, pretrained=config.clip.pretrained, device=config.device,
                      precision=config.clip.precision, batch_size=config.clip.batch_size)
        kwargs.update(spec.params)
        return cls(name=spec.alias or spec.name, **kwargs)
    return factory


def _lpips(spec, config, context):
    from mira_env.rewards.lpips_term import LpipsDistance

    s = config.lpips
    kwargs = dict(net=s.net, device=config.device, random_backbone=s.random_backbone, torch_home=s.torch_home,
                  batch_size=s.batch_size, max_side=s.max_side)
    kwargs.update(spec.params)
    return LpipsDistance(name=spec.alias or spec.name, **kwargs)


def _pixel(power: int) -> Factory:
    def factory(spec, config, context):
        from mira_env.rewards.pixel import PixelDistance

        return PixelDistance(power=power, name=spec.alias or spec.name, **spec.params)
    return factory


def _judge(aspect: str) -> Factory:
    def factory(spec, config, context):
        from mira_env.rewards.judge.terms import JudgeTerm

        if spec.params:
            raise RewardConfigError(f"term {spec.name!r} takes no params (got {sorted(spec.params)}); configure "
                                    "the judge under the top-level 'judge:' settings")
        return JudgeTerm(context.judge(), aspect, name=spec.alias or spec.name)
    return factory


def _pixel_target(power: int) -> Factory:
    def factory(spec, config, context):
        from mira_env.rewards.target import TargetPixelDistance

        return TargetPixelDistance(power=power, name=spec.alias or spec.name, **spec.params)
    return factory


def _clip_target(spec, config, context):
    from mira_env.rewards.target import TargetClipImage

    kwargs = dict(model_name=config.clip.model_name, pretrained=config.clip.pretrained, device=config.device,
                  precision=config.clip.precision, batch_size=config.clip.batch_size)
    kwargs.update(spec.params)
    return TargetClipImage(name=spec.alias or spec.name, **kwargs)


def _iqa(term: str) -> Factory:
    def factory(spec, config, context):
        from mira_env.rewards.iqa import IQA_TERMS, PyiqaQuality

        kwargs = {"metric": IQA_TERMS[term], "device": config.device, **spec.params}
        return PyiqaQuality(name=spec.alias or spec.name, **kwargs)
    return factory


def _simple(module: str, cls_name: str) -> Factory:
    def factory(spec, config, context):
        import importlib

        cls = getattr(importlib.import_module(module), cls_name)
        return cls(name=spec.alias or spec.name, **spec.params)
    return factory


TERMS: dict[str, Factory] = {
    "clip_t": _clip("ClipTextImage"),
    "clip_dir": _clip("ClipDirectional"),
    "clip_i": _clip("ClipImage"),
    "lpips": _lpips,
    "l1": _pixel(1),
    "l2": _pixel(2),
    "judge_sc": _judge("sc"),
    "judge_pq": _judge("pq"),
    "judge_overall": _judge("overall"),
    "format": _simple("mira_env.rewards.rules", "FormatReward"),
    "step_cost": _simple("mira_env.rewards.rules", "StepCost"),
    "invalid_action": _simple("mira_env.rewards.rules", "InvalidActionPenalty"),
    "oracle": _simple("mira_env.rewards.oracle", "OracleReward"),
    "oracle_progress": _simple("mira_env.rewards.oracle", "OracleProgress"),
    "target_l1": _pixel_target(1),
    "target_l2": _pixel_target(2),
    "target_clip_i": _clip_target,
    "arniqa": _iqa("arniqa"),
    "topiq": _iqa("topiq"),
}


def register_term(name: str, factory: Factory, overwrite: bool = False) -> None:
    """Add a term factory ``factory(spec, config, context) -> term`` under ``name``."""
    if not isinstance(name, str) or not name:
        raise RewardConfigError(f"term name={describe(name)} must be a non-empty str")
    if name in TERMS and not overwrite:
        raise RewardConfigError(f"a term named {name!r} is already registered; pass overwrite=True to replace it")
    if not callable(factory):
        raise RewardConfigError(f"factory={describe(factory)} must be callable (spec, config, context) -> term")
    TERMS[name] = factory


def _plugin(target: Any, where: str) -> Factory:
    """The factory of a term plugin: a term class / factory called with the spec's params (``name=`` when the spec
    has an alias, ``device=`` from the config when it takes one), or a ready term object (no params)."""
    from mira_env.plugins import accepts

    def factory(spec, config, context):
        if callable(getattr(target, "score", None)) and not isinstance(target, type):
            if spec.params:
                raise RewardConfigError(f"term {spec.name!r} ({where}) is a term object; it takes no params "
                                        f"(got {sorted(spec.params)})")
            term = target
        elif callable(target):
            kwargs = dict(spec.params)
            if spec.alias:
                kwargs["name"] = spec.alias
            if "device" not in kwargs and accepts(target, "device"):
                kwargs["device"] = config.device
            term = target(**kwargs)
        else:
            raise RewardConfigError(f"term {spec.name!r} ({where}) is {describe(target)}: point it at a term class, "
                                    f"a factory or a term object")
        if not callable(getattr(term, "score", None)):
            raise RewardConfigError(f"term {spec.name!r} ({where}) built {describe(term)}, which has no score(items) "
                                    f"method (see mira_env.rewards.base.RewardTerm)")
        if not isinstance(getattr(term, "name", None), str) or (spec.alias and term.name != spec.alias):
            term.name = spec.alias or spec.name.rpartition(":")[2].rpartition(".")[2]
        return term
    return factory


def term_factory(name: str) -> Factory:
    """The factory of term ``name``: a built-in or registered name, an import path ``pkg.module:Class``, or a term
    a package registers in entry-point group ``mira_env.reward_terms`` (:mod:`mira_env.plugins`)."""
    from mira_env.errors import ConfigError
    from mira_env.plugins import REWARD_TERM_GROUP, is_import_path, load_object, load_plugin, plugin_names

    if name in TERMS:
        return TERMS[name]
    try:
        if is_import_path(name):
            return _plugin(load_object(name, what="reward term"), f"import path {name!r}")
        target = load_plugin(REWARD_TERM_GROUP, name, what="reward term")
    except ConfigError as exc:
        raise RewardConfigError(str(exc)) from None
    if target is None:
        installed = ", ".join(plugin_names(REWARD_TERM_GROUP)) or "none"
        raise RewardConfigError(f"unknown reward term {name!r}; known terms: {sorted(TERMS)}, an import path "
                                f"'pkg.module:Class', or a plugin of entry-point group {REWARD_TERM_GROUP!r} "
                                f"(installed: {installed})")
    return _plugin(target, f"entry point of {REWARD_TERM_GROUP!r}")


def build_terms(config) -> list:
    """The term objects of ``config`` (a :class:`~mira_env.rewards.config.RewardConfig`), in order."""
    context = BuildContext(config)
    terms = []
    for spec in config.terms:
        try:
            terms.append(term_factory(spec.name)(spec, config, context))
        except TypeError as exc:
            raise RewardConfigError(f"term {spec.name!r}: bad params {spec.params}: {exc}") from None
    return terms


def build_reward(config: Any) -> CompositeReward:
    """A :class:`CompositeReward` from a :class:`~mira_env.rewards.config.RewardConfig`, a mapping, or a YAML file path."""
    from mira_env.rewards.config import RewardConfig

    if isinstance(config, (str, Path)):
        config = RewardConfig.from_yaml(config)
    elif isinstance(config, Mapping):
        config = RewardConfig.from_dict(config)
    elif not isinstance(config, RewardConfig):
        raise RewardConfigError(f"build_reward(config={describe(config)}): pass a RewardConfig, a mapping or the "
                                "path of a YAML file")
    terms = build_terms(config)
    return CompositeReward(terms, [spec.weight for spec in config.terms], normalization=config.normalization,
                           norm_stats=config.norm_stats, missing=config.missing)
