"""``mira audit-rewards``: rank-correlate every reward term with the shapes-world oracle.

Flags: the fields of :class:`AuditArguments` (the reward-model options are
:class:`mira_env.agents.commands.metrics.RewardModelOptions`, shared with ``mira eval`` and ``mira train grpo``);
the audit itself is :func:`mira_env.rewards.audit.run_audit`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mira_env.agents.commands.metrics import RewardModelOptions, model_sections
from mira_env.errors import ConfigError
from mira_env.rewards.audit_episodes import KINDS
from mira_env.train.config import OldFlag, add_command_arguments, dash_flags, resolve_config

#: the audited composite without --reward_config: (term, weight[, params]); judge terms join with a judge
DEFAULT_TERMS: tuple[tuple, ...] = (("clip_t", 0.0), ("clip_dir", 1.0), ("clip_i", 0.5), ("lpips", -0.5), ("l1", 0.0),
                                    ("l2", 0.0), ("step_cost", 0.0, {"max_steps": 10}))
JUDGE_TERMS = (("judge_sc", 0.0), ("judge_pq", 0.0), ("judge_overall", 1.0))


@dataclass
class AuditArguments(RewardModelOptions):
    """Which episodes to play and which reward to audit on them."""

    out: str = field(default="reward_audit", metadata={"help": "Report folder (created)."})
    episodes: int = field(default=60, metadata={"help": "Number of episodes."})
    noise_levels: list[float] = field(default_factory=lambda: [0.0, 0.2, 0.5], metadata={
        "help": "Editor noise levels the episodes are played at (space- or comma-separated)."})
    kinds: list[str] = field(default_factory=lambda: list(KINDS), metadata={
        "help": f"Episode kinds among {', '.join(KINDS)}."})
    split: str = field(default="validation", metadata={"help": "Shapes task split."})
    resolution: int = field(default=64, metadata={"help": "Shapes image size (pixels)."})
    seed: int = field(default=0, metadata={"help": "Seed of the episodes."})
    batch_size: int = field(default=16, metadata={"help": "Items per reward call."})
    reward_config: str | None = field(default=None, metadata={
        "help": "YAML reward config (terms, weights, models); its composite is audited too. Excludes the tiny models."})
    device: str = field(default="auto", metadata={"help": "Device of the reward models."})
    progress: bool = field(default=True, metadata={"help": "Show progress bars."})

    def __post_init__(self) -> None:
        super().__post_init__()
        self.kinds = [k.strip() for part in self.kinds for k in str(part).split(",") if k.strip()]
        self.noise_levels = [_number("noise_levels", x) for part in self.noise_levels for x in str(part).split(",")
                             if str(x).strip()]
        if self.reward_config and (self.tiny_reward_models or self.tiny_judge):
            raise ConfigError("--tiny_reward_models / --tiny_judge replace the models of the default reward; drop "
                              "--reward_config or the tiny flags")


def _number(name: str, text: Any) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"--{name} {text!r} must be numbers such as 0 0.2 0.5") from None


OLD_FLAGS = [*dash_flags([AuditArguments], "noise_levels", "batch_size", "reward_config", "clip_model",
                         "clip_pretrained", "lpips_net", "judge_model", "judge_base_url", "judge_api_key_env",
                         "tiny_cache"),
             OldFlag("--tiny", "tiny_reward_models", True, also=(("tiny_judge", True),)),
             OldFlag("--no-progress", "progress", False)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_command_arguments(parser, [(AuditArguments, "audit")], OLD_FLAGS)


def default_config(options: AuditArguments) -> dict:
    """The audited reward when no ``--reward_config`` is given (composite: normalise-then-sum); the judge terms
    join when a judge is configured (``--judge_model`` or ``--tiny_judge``)."""
    specs = list(DEFAULT_TERMS) + (list(JUDGE_TERMS) if options.judge_model or options.tiny_judge else [])
    terms = [{"name": s[0], "weight": s[1], **({"params": s[2]} if len(s) > 2 else {})} for s in specs]
    sections, _, notes = model_sections(options, [t["name"] for t in terms], cache_name="audit", require=False)
    for note in notes:
        print(f"note: {note}")
    return {"terms": terms, "normalization": "normalize_then_sum", "missing": "skip", "device": options.device,
            **sections}


def main(args: argparse.Namespace) -> int:
    from mira_env.rewards.audit import run_audit
    from mira_env.rewards.audit_episodes import generate_episodes
    from mira_env.rewards.config import RewardConfig

    (options,) = resolve_config([AuditArguments], args)
    config = RewardConfig.from_yaml(options.reward_config) if options.reward_config else default_config(options)
    episodes = generate_episodes(options.episodes, options.noise_levels, options.kinds, seed=options.seed,
                                 split=options.split, resolution=options.resolution, progress=options.progress)
    tiny = options.tiny_reward_models or options.tiny_judge
    results = run_audit(config, options.out, episodes, options.batch_size, options.progress, tiny,
                        options.noise_levels, options.kinds)
    print(f"wrote {Path(options.out) / 'report.md'} ({results['num_episodes']} episodes, "
          f"{len(results['plots'])} plots)")
    return 0
