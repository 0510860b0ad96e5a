"""The metrics of ``mira run`` / ``mira eval`` tables and the ONE definition of reward-model options.

:class:`RewardModelOptions` says which models the model-based reward terms use (CLIP, LPIPS, the VLM judge, or tiny
offline stand-ins). ``mira eval`` (:class:`MetricOptions`), ``mira audit-rewards`` and ``mira train grpo``
(:class:`mira_env.train.grpo.GRPOEnvArguments`) all take these fields, under the same flags and defaults, and
:func:`model_sections` turns them into the ``clip`` / ``lpips`` / ``judge`` sections of a reward config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from mira_env.errors import ConfigError
from mira_env.rewards.composite import MergedReward
from mira_env.validate import check_choice

#: metric terms tried by default, in table order
DEFAULT_METRICS = ("judge_sc", "judge_pq", "judge_overall", "clip_t", "clip_i", "lpips", "l1")
JUDGE_BACKENDS = ("transformers", "openai", "editscore")
LPIPS_NETS = ("alex", "vgg", "squeeze")


@dataclass
class RewardModelOptions:
    """The models behind CLIP, LPIPS and judge reward terms (one definition for eval, audit-rewards and GRPO)."""

    clip_model: str = field(default="ViT-B-32", metadata={"help": "open_clip model name of the clip_* terms."})
    clip_pretrained: str | None = field(default=None, metadata={
        "help": "open_clip pretrained tag (e.g. openai) or checkpoint path; the clip_* terms are off without it "
                "(or --tiny_reward_models)."})
    lpips_net: str = field(default="alex", metadata={"help": "LPIPS backbone.", "choices": LPIPS_NETS})
    lpips_torch_home: str | None = field(default=None, metadata={
        "help": "TORCH_HOME holding the LPIPS backbone's torchvision checkpoint; without it (or "
                "--tiny_reward_models) lpips is off where no checkpoint can be found."})
    judge_backend: str | None = field(default=None, metadata={
        "help": "Backend of the judge_* terms: transformers | openai | editscore (unset: openai when "
                "--judge_base_url is given, else transformers)."})
    judge_model: str | None = field(default=None, metadata={
        "help": "Judge VLM of the judge_* terms: a hub id / local path (transformers) or the endpoint's model name "
                "(openai), e.g. Qwen/Qwen2.5-VL-7B-Instruct served by vllm."})
    judge_base_url: str | None = field(default=None, metadata={
        "help": "OpenAI-compatible base URL of the judge, e.g. http://127.0.0.1:8000/v1."})
    judge_api_key_env: str = field(default="OPENAI_API_KEY", metadata={
        "help": "Environment variable holding the judge endpoint's API key ('' = a local server with no key)."})
    tiny_reward_models: bool = field(default=False, metadata={
        "help": "Tiny random offline CLIP and LPIPS models (plumbing runs: the scores mean nothing)."})
    tiny_judge: bool = field(default=False, metadata={
        "help": "A tiny random offline judge VLM (plumbing runs: mostly unscorable)."})
    tiny_cache: str | None = field(default=None, metadata={
        "help": "Folder the tiny models are built in (default: beside $MIRA_TINY_CACHE's tiny VLM)."})

    def __post_init__(self) -> None:
        if self.judge_backend is not None:
            check_choice("judge_backend", self.judge_backend, JUDGE_BACKENDS)
        check_choice("lpips_net", self.lpips_net, LPIPS_NETS)

    @property
    def judge(self) -> dict[str, Any]:
        """The ``judge`` section of a reward config for :attr:`judge_model` (no tiny judge)."""
        backend = self.judge_backend or ("openai" if self.judge_base_url else "transformers")
        section: dict[str, Any] = {"backend": backend, "model": self.judge_model}
        if self.judge_base_url is not None:
            section["base_url"] = self.judge_base_url
        if backend == "openai":
            section["api_key_env"] = self.judge_api_key_env or None
        return section

    def cache(self, default: str) -> Path:
        if self.tiny_cache:
            return Path(self.tiny_cache)
        from mira_env.tiny.vlm import default_path

        return default_path().parent / default


def model_sections(options: RewardModelOptions, names: Sequence[str], cache_name: str = "eval_reward_models",
                   require: bool = True) -> tuple[dict[str, Any], list[str], list[str]]:
    """``(sections, available, notes)`` for the terms ``names``: the ``clip`` / ``lpips`` / ``judge`` reward-config
    sections their models need, the names whose model is configured, and a note per term left out or tiny.

    ``require=False`` keeps every term (the reward's own defaults fill in what the options leave unset)."""
    sections: dict[str, Any] = {}
    available: list[str] = []
    notes: list[str] = []
    for name in names:
        if name.startswith("clip"):
            if options.tiny_reward_models:
                from mira_env.tiny.reward_models import build_tiny_clip

                model_name, checkpoint = build_tiny_clip(options.cache(cache_name) / "clip")
                sections["clip"] = {"model_name": model_name, "pretrained": checkpoint}
                notes.append(f"{name}: tiny random CLIP (plumbing only, not a real score)")
            elif options.clip_pretrained or not require:
                sections["clip"] = {"model_name": options.clip_model, **(
                    {"pretrained": options.clip_pretrained} if options.clip_pretrained else {})}
            elif require:
                notes.append(f"{name} omitted: no CLIP weights (give --clip_pretrained <tag or checkpoint>, "
                             f"or --tiny_reward_models for a plumbing run)")
                continue
        elif name == "lpips":
            if options.tiny_reward_models:
                from mira_env.tiny.reward_models import build_tiny_lpips_home

                sections["lpips"] = {"net": "squeeze",
                                     "torch_home": str(build_tiny_lpips_home(options.cache(cache_name) / "lpips"))}
                notes.append("lpips: tiny LPIPS backbone (plumbing only, not a real score)")
            elif options.lpips_torch_home or not require:
                sections["lpips"] = {"net": options.lpips_net, **(
                    {"torch_home": options.lpips_torch_home} if options.lpips_torch_home else {})}
            else:
                notes.append("lpips omitted: no LPIPS backbone (give --lpips_torch_home <TORCH_HOME with the "
                             "torchvision checkpoint>, or --tiny_reward_models)")
                continue
        elif name.startswith("judge"):
            if options.tiny_judge:
                if "judge" not in sections:
                    sections["judge"] = tiny_judge_section(options.cache(cache_name) / "judge")
                notes.append(f"{name}: tiny random judge VLM (plumbing only, mostly unscorable)")
            elif options.judge_model or not require:
                sections["judge"] = options.judge
            else:
                notes.append(f"{name} omitted: no judge (give --judge_model, with --judge_base_url for an endpoint)")
                continue
        available.append(name)
    return sections, available, notes


def tiny_judge_section(folder: Path) -> dict[str, Any]:
    """The ``judge`` section of a tiny random offline judge VLM built (once) into ``folder``."""
    from transformers import AutoProcessor

    from mira_env.tiny.vlm import build_tiny_vlm, suppress_token_ids

    path = str(build_tiny_vlm("qwen2_5_vl", folder))
    return {"backend": "transformers", "model": path, "max_new_tokens": 12,
            "generate_kwargs": {"suppress_tokens": suppress_token_ids(AutoProcessor.from_pretrained(path))}}


@dataclass
class MetricOptions(RewardModelOptions):
    """Which metric terms ``mira eval`` computes, and the models behind them."""

    metrics: list[str] | None = field(default=None, metadata={
        "help": "Metric terms (names of the rewards registry, space- or comma-separated); unset = every default "
                "term (" + ", ".join(DEFAULT_METRICS) + ") whose model is configured."})
    reward_config: str | None = field(default=None, metadata={
        "help": "A YAML reward config whose components are logged (overrides the metric options)."})
    device: str = field(default="auto", metadata={"help": "Device of the metric models."})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.metrics is not None:
            self.metrics = [m.strip() for part in self.metrics for m in str(part).split(",") if m.strip()]


def shapes_reward(metrics: Any = None) -> Any:
    """The shapes world's reward for tables: the oracle score (the RL reward, with ``success``), plus
    ``oracle_progress`` (the share of the remaining gap closed) and ``metrics`` logged beside it."""
    from mira_env.rewards import build_reward
    from mira_env.shapes.oracle import ShapesOracleReward

    progress = build_reward({"terms": [{"name": "oracle_progress", "weight": 0.0}]})
    return MergedReward(ShapesOracleReward(), [progress, metrics])


def build_metric_reward(metrics: Sequence[str] | MetricOptions | None = None) -> tuple[Any, list[str]]:
    """A composite of the metric terms with weight 0 each, and notes on the terms left out.

    Returns ``(None, notes)`` when no term is available.
    """
    from mira_env.rewards import TERMS, build_reward

    options = metrics if isinstance(metrics, MetricOptions) else MetricOptions(
        metrics=None if metrics is None else list(metrics))
    if options.reward_config:
        return build_reward(options.reward_config), [f"metrics from {options.reward_config}"]
    wanted = list(options.metrics) if options.metrics is not None else list(DEFAULT_METRICS)
    unknown = [m for m in wanted if m not in TERMS]
    if unknown:
        raise ConfigError(f"unknown metric(s) {unknown}; known terms: {sorted(TERMS)}")
    sections, available, notes = model_sections(options, wanted)
    if not available:
        return None, notes
    config: dict[str, Any] = {"device": options.device, "missing": "skip", **sections,
                              "terms": [{"name": name, "weight": 0.0} for name in available]}
    return build_reward(config), notes


__all__ = ["DEFAULT_METRICS", "MetricOptions", "RewardModelOptions", "build_metric_reward", "model_sections",
           "shapes_reward", "tiny_judge_section"]
