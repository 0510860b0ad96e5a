"""Dataclass configuration of a composite reward, loadable from a dict or a YAML file.

YAML example::

    normalization: none            # none | normalize_then_sum | sum_then_normalize
    norm_stats: range              # range | batch
    missing: none                  # none | skip
    device: auto
    terms:
      - {name: judge_overall, weight: 1.0}
      - {name: clip_i, weight: 0.0}          # weight 0: logged only
      - {name: lpips, weight: -0.5}
      - {name: step_cost, weight: -0.05, params: {max_steps: 5}}
      - format                               # a bare name: weight 1, default params
    clip: {model_name: ViT-B-32, pretrained: openai}
    lpips: {net: alex}
    judge: {backend: transformers, model: Qwen/Qwen2.5-VL-7B-Instruct}

Alternatively ``terms: [clip_t, lpips]`` with a parallel ``weights: [1.0, -0.5]`` list (its length
must match). ``params`` go to the term's constructor (see :mod:`mira_env.rewards.registry`). A term of your
own: ``- {name: my_pkg.terms:Sharpness, weight: 0.5, params: {radius: 2}}`` (an import path), or its plugin
name when a package registers it (entry-point group ``mira_env.reward_terms``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from mira_env.validate import check_float

from mira_env.rewards.composite import MISSING_POLICIES, NORM_STATS, NORMALIZATIONS
from mira_env.rewards.errors import RewardConfigError, choice_error, describe

JUDGE_BACKENDS = ("transformers", "openai", "editscore")


def _from_mapping(cls, data: Any, what: str):
    if isinstance(data, cls):
        return data
    if data is None:
        return cls()
    if not isinstance(data, Mapping):
        raise RewardConfigError(f"{what}={describe(data)} must be a mapping of {cls.__name__} fields")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise RewardConfigError(f"unknown {what} option(s) {unknown}; known: {sorted(names)}")
    return cls(**data)


@dataclass
class TermSpec:
    """One term of the composite: registry name, weight, component name and constructor params."""

    name: str = field(metadata={
        "help": "Registry name of the term (see mira_env.rewards.registry.TERMS), an import path "
                "'pkg.module:Class' or a plugin name (entry-point group 'mira_env.reward_terms')."})
    weight: float = field(default=1.0, metadata={"help": "Weight in the total; 0 = logged metric only."})
    alias: str | None = field(default=None, metadata={
        "help": "Component name in the output (default: the registry name); needed to use one term twice."})
    params: dict = field(default_factory=dict, metadata={"help": "Keyword arguments of the term's constructor."})

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise RewardConfigError(f"term name={describe(self.name)} must be a non-empty str")
        check_float(f"term {self.name!r} weight", self.weight, error=RewardConfigError)
        if not isinstance(self.params, Mapping):
            raise RewardConfigError(f"params of term {self.name!r} is {describe(self.params)}; it must be a mapping")
        self.weight = float(self.weight)
        self.params = dict(self.params)


@dataclass
class ClipSettings:
    """The open_clip model shared by clip_t / clip_dir / clip_i."""

    model_name: str = field(default="ViT-B-32", metadata={"help": "open_clip model name (or 'hf-hub:org/repo')."})
    pretrained: str | None = field(default="openai", metadata={
        "help": "open_clip pretrained tag or checkpoint path; None = random weights (tests only)."})
    precision: str = field(default="fp32", metadata={"help": "fp32 | fp16 | bf16."})
    batch_size: int = field(default=32, metadata={"help": "Images / texts per encoder call."})


@dataclass
class LpipsSettings:
    """The LPIPS model of the lpips term."""

    net: str = field(default="alex", metadata={"help": "Backbone: alex | vgg | squeeze."})
    random_backbone: bool = field(default=False, metadata={
        "help": "Random backbone (lpips pnet_rand): offline plumbing tests only, never for real scores."})
    torch_home: str | None = field(default=None, metadata={
        "help": "TORCH_HOME holding the torchvision backbone checkpoint (offline clusters); None = default."})
    batch_size: int = field(default=16, metadata={"help": "Image pairs per LPIPS call."})
    max_side: int | None = field(default=512, metadata={"help": "Downscale so the longer side is at most this."})


@dataclass
class JudgeSettings:
    """The VLM judge shared by judge_sc / judge_pq / judge_overall."""

    backend: str = field(default="transformers", metadata={"help": "transformers | openai | editscore."})
    model: str | None = field(default=None, metadata={
        "help": "Hub id / local path (transformers), the endpoint's model name (openai)."})
    base_url: str | None = field(default=None, metadata={"help": "OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1."})
    api_key_env: str | None = field(default="OPENAI_API_KEY", metadata={
        "help": "Name of the environment variable holding the API key (openai); None = no key."})
    timeout_s: float = field(default=60.0, metadata={"help": "Per-request timeout (openai)."})
    max_retries: int = field(default=3, metadata={"help": "Retries with exponential backoff (openai)."})
    concurrency: int = field(default=4, metadata={"help": "Requests in flight (openai)."})
    max_new_tokens: int = field(default=256, metadata={"help": "Answer budget in tokens."})
    batch_size: int = field(default=8, metadata={"help": "Prompts per generate call (transformers)."})
    dtype: str = field(default="auto", metadata={"help": "auto | float32 | float16 | bfloat16 (transformers)."})
    cache_path: str | None = field(default=None, metadata={"help": "JSONL file persisting judgements across runs."})
    editscore_kwargs: dict = field(default_factory=dict, metadata={"help": "Arguments of editscore.EditScore(...)."})
    generate_kwargs: dict = field(default_factory=dict, metadata={"help": "Extra model.generate arguments."})

    def __post_init__(self) -> None:
        if self.backend not in JUDGE_BACKENDS:
            raise choice_error("judge backend", self.backend, JUDGE_BACKENDS)


@dataclass
class RewardConfig:
    """A composite reward: the terms, their weights, normalisation and the shared model settings."""

    terms: list = field(default_factory=list, metadata={
        "help": "Terms: registry names, {name, weight, alias, params} mappings or TermSpec objects."})
    weights: list | None = field(default=None, metadata={
        "help": "Optional weights parallel to `terms` (overrides their own weights); length must match."})
    normalization: str = field(default="none", metadata={"help": "none | normalize_then_sum | sum_then_normalize."})
    norm_stats: str = field(default="range", metadata={"help": "range (declared term ranges) | batch (z-score)."})
    missing: str = field(default="none", metadata={
        "help": "A weighted term is None: 'none' -> total None with the reason; 'skip' -> left out of the sum."})
    device: str = field(default="auto", metadata={"help": "Device of the model-backed terms: auto | cpu | cuda[:N]."})
    clip: ClipSettings = field(default_factory=ClipSettings, metadata={"help": "CLIP model settings."})
    lpips: LpipsSettings = field(default_factory=LpipsSettings, metadata={"help": "LPIPS settings."})
    judge: JudgeSettings = field(default_factory=JudgeSettings, metadata={"help": "VLM judge settings."})

    def __post_init__(self) -> None:
        from mira_env.rewards.registry import term_factory

        if isinstance(self.terms, (str, Mapping)) or not isinstance(self.terms, (list, tuple)) or not self.terms:
            raise RewardConfigError(f"terms={describe(self.terms)} must be a non-empty list of term names or specs")
        specs = []
        for index, term in enumerate(self.terms):
            if isinstance(term, str):
                term = TermSpec(term)
            elif isinstance(term, Mapping):
                term = _from_mapping(TermSpec, term, f"terms[{index}]")
            elif not isinstance(term, TermSpec):
                raise RewardConfigError(f"terms[{index}]={describe(term)} must be a name, a mapping or a TermSpec")
            term_factory(term.name)  # a built-in, an import path or a plugin; else the error lists them
            specs.append(term)
        if self.weights is not None:
            if isinstance(self.weights, (str, Mapping)) or not isinstance(self.weights, (list, tuple)):
                raise RewardConfigError(f"weights={describe(self.weights)} must be a list of numbers")
            if len(self.weights) != len(specs):
                raise RewardConfigError(
                    f"weights has {len(self.weights)} entries for {len(specs)} terms "
                    f"{[s.alias or s.name for s in specs]}; pass exactly one weight per term (0 = log only)")
            specs = [TermSpec(s.name, w, s.alias, s.params) for s, w in zip(specs, self.weights)]
        names = [s.alias or s.name for s in specs]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise RewardConfigError(f"term name(s) {duplicated} appear twice; give the copies an alias")
        self.terms = specs
        if self.normalization not in NORMALIZATIONS:
            raise choice_error("normalization", self.normalization, NORMALIZATIONS)
        if self.norm_stats not in NORM_STATS:
            raise choice_error("norm_stats", self.norm_stats, NORM_STATS)
        if self.missing not in MISSING_POLICIES:
            raise choice_error("missing", self.missing, MISSING_POLICIES)
        self.clip = _from_mapping(ClipSettings, self.clip, "clip")
        self.lpips = _from_mapping(LpipsSettings, self.lpips, "lpips")
        self.judge = _from_mapping(JudgeSettings, self.judge, "judge")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RewardConfig":
        """A config from a plain mapping (nested mappings for clip / lpips / judge)."""
        return _from_mapping(cls, data, "reward config")

    @classmethod
    def from_yaml(cls, path: str | Path) -> "RewardConfig":
        """A config from a YAML file (see the module docstring)."""
        import yaml

        path = Path(path)
        if not path.is_file():
            raise RewardConfigError(f"reward config file {str(path)!r} does not exist")
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(data, Mapping):
            raise RewardConfigError(f"{path}: the YAML top level must be a mapping, got {type(data).__name__}")
        return cls.from_dict(data)
