"""The shapes-world learning result: untrained -> SFT -> SFT + GRPO (episode / turn credit), on held-out tasks.

Thin glue over the public pieces, top to bottom:

1. ``mira export`` writes fresh training-split tasks with their oracle trajectories (MIRA-Editing records; every
   SFT sample is seen once: no repeated epochs);
2. a random-init small Qwen2.5-VL-architecture policy with a BPE tokenizer trained offline on those records' text;
3. ``mira train sft`` (:func:`mira_env.train.sft.train_sft` on the exported records; a wall-clock budget and a
   held-out curve as callbacks);
4. ``mira train grpo`` (:func:`mira_env.train.grpo.train_grpo`) under editor noise with ``oracle_progress`` plus a
   success bonus as the reward, once with the episode advantage and once with turn-level credit
   (``--advantage turn``, :mod:`mira_env.train.credit`), the reward-hacking monitor (:mod:`mira_env.train.monitor`) as a callback;
5. every stage (and the scripted oracle, replanning and open loop) plays the SAME held-out test-split tasks with the
   SAME editor seeds through the rollout engine (:func:`mira_env.agents.play.play_episodes`); paired McNemar tests.

    python experiments/learning.py --out runs/learning            # the full run (scripts/learning_result.sh)
    python experiments/learning.py --out /tmp/l --smoke           # minutes-long plumbing check

This file is an experiment of the repository, not part of the installed package: everything it calls is public
(``mira_env.*``), so a user can copy it as the template of their own learning study.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from mira_env.errors import ConfigError

CREDITS = ("episode", "turn")


@dataclass
class LearningConfig:
    """Sizes of the learning run."""

    out: str = field(default="runs/learning", metadata={"help": "Output folder (models, logs, results)."})
    difficulty: int = field(default=1, metadata={"help": "Shapes-world difficulty of every task."})
    resolution: int = field(default=56, metadata={"help": "Image resolution."})
    budget: int = field(default=3, metadata={"help": "Edit budget T (max_tool_calling_iterations)."})
    noise: float = field(default=0.25, metadata={
        "help": "Editor noise probability of each kind in --noise_kinds, for GRPO, the monitor and evaluation "
                "(SFT trajectories are clean unless --sft_noise)."})
    noise_kinds: str = field(default="ignore", metadata={
        "help": "Comma-separated EditorNoise kinds at probability --noise (ignore, wrong_object, color_drift, "
                "position_drift, partial)."})
    short_tasks: int = field(default=6000, metadata={
        "help": "Fresh training tasks for the short-context SFT stage (`--sample_format single_turn`: one user "
                "message, no tool block; 3 samples each). 0 skips the stage."})
    short_steps: int = field(default=1200, metadata={"help": "Short-context SFT steps at most (one pass)."})
    short_minutes: float = field(default=10.0, metadata={"help": "Short-context SFT wall-clock budget."})
    short_batch: int = field(default=16, metadata={"help": "Short-context SFT batch size (samples)."})
    sft_tasks: int = field(default=3000, metadata={
        "help": "Fresh training tasks exported for the multi-turn SFT stage (the GRPO / eval conversation)."})
    sft_noise: float = field(default=0.0, metadata={
        "help": "`mira export --noise_ignore` of the multi-turn SFT stage's tasks: each edit is ignored with this "
                "probability and the oracle re-issues it, so the trajectories teach looking at It and retrying "
                "(tasks whose retries do not fit in --budget are skipped). 0 = clean trajectories."})
    sft_steps: int = field(default=1000, metadata={"help": "SFT optimizer steps at most (one pass: no sample twice)."})
    sft_minutes: float = field(default=20.0, metadata={"help": "SFT wall-clock budget; training stops at it."})
    sft_batch: int = field(default=8, metadata={"help": "SFT batch size."})
    sft_lr: float = field(default=3e-3, metadata={"help": "SFT learning rate of both stages (20 warm-up steps)."})
    sft_scheduler: str = field(default="cosine", metadata={
        "help": "lr_scheduler_type of the multi-turn SFT stage (the short-context stage is constant after warm-up): "
                "'cosine' anneals to 0 over sft_steps."})
    sft_loss_turns: str = field(default="all", metadata={
        "help": "`mira train sft --loss_turns`: 'all' = one sample per trajectory with the loss on every answer "
                "(sft_batch counts trajectories), 'last' = one sample per step."})
    curve_every: int = field(default=200, metadata={"help": "SFT steps between held-out curve points."})
    curve_tasks: int = field(default=32, metadata={"help": "Validation tasks per curve / monitor point."})
    grpo_tasks: int = field(default=256, metadata={"help": "Training tasks for GRPO (fresh: one row per task)."})
    grpo_steps: int = field(default=30, metadata={"help": "GRPO optimizer steps per credit variant."})
    group: int = field(default=8, metadata={"help": "GRPO group size (num_generations)."})
    grpo_batch: int = field(default=16, metadata={"help": "Completions per GRPO step (a multiple of group)."})
    grpo_lr: float = field(default=3e-4, metadata={"help": "GRPO learning rate."})
    grpo_temperature: float = field(default=1.0, metadata={"help": "GRPO sampling temperature of the rollouts."})
    beta: float = field(default=0.0, metadata={"help": "GRPO KL coefficient."})
    success_bonus: float = field(default=1.0, metadata={
        "help": "GRPO reward = oracle_progress + success_bonus on an exact match."})
    credits: str = field(default="episode,turn", metadata={
        "help": "GRPO variants to run from the same SFT policy: 'episode' (TRL's group advantage), 'turn' "
                "(mira_env.train.credit turn-level advantages), comma-separated; the first is the summary's."})
    monitor_every: int = field(default=10, metadata={"help": "GRPO steps between reward-hacking monitor checks."})
    eval_tasks: int = field(default=100, metadata={"help": "Held-out test-split tasks per evaluation."})
    eval_untrained: bool = field(default=False, metadata={
        "help": "Also evaluate the random-init policy (it solves nothing: 0/100 in the previous run)."})
    hidden: int = field(default=128, metadata={"help": "Hidden size of the policy's language model."})
    layers: int = field(default=3, metadata={"help": "Layers of the policy's language model."})
    seed: int = field(default=0, metadata={"help": "Seed of model init, data and evaluation."})
    bpe_vocab: int = field(default=1024, metadata={"help": "BPE vocabulary size (before the special tokens)."})
    threads: int = field(default=1, metadata={"help": "torch intra-op threads."})

    def __post_init__(self) -> None:
        unknown = [c for c in self.credit_list if c not in CREDITS]
        if unknown or not self.credit_list:
            raise ConfigError(f"credits={self.credits!r}: each must be one of {list(CREDITS)}")
        if self.grpo_batch % self.group:
            raise ConfigError(f"grpo_batch={self.grpo_batch} must be a multiple of group={self.group}")

    @property
    def credit_list(self) -> list[str]:
        return [c.strip() for c in self.credits.split(",") if c.strip()]

    @property
    def noise_spec(self) -> dict[str, float]:
        return {kind.strip(): float(self.noise) for kind in self.noise_kinds.split(",") if kind.strip()}


def wilson(successes: int, n: int) -> list[float]:
    """Wilson 95% interval of ``successes`` in ``n`` (``[0, 1]`` without trials)."""
    from mira_env.agents.intervals import wilson_interval

    return wilson_interval(successes, n) or [0.0, 1.0]


def build_small_vlm(path: Path, hidden: int, layers: int, seed: int) -> Path:
    """A randomly initialised Qwen2.5-VL-architecture model of ``hidden`` x ``layers`` with the tiny
    build's byte-level tokenizer and processor, saved with ``save_pretrained``."""
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    from mira_env.tiny.vlm import build_tiny_vlm

    if (path / "config.json").is_file():
        return path
    tiny = build_tiny_vlm("qwen2_5_vl", seed=seed)
    config = AutoConfig.from_pretrained(tiny)
    heads = max(1, hidden // 32)
    head_dim = hidden // heads
    quarter = head_dim // 2
    text = config.text_config
    text.hidden_size, text.intermediate_size, text.num_hidden_layers = hidden, 2 * hidden, layers
    text.num_attention_heads, text.num_key_value_heads = heads, heads
    # The byte-level tokenizer makes the multi-turn tool prompt ~1100 tokens per turn: TRL drops every
    # tool result of a sequence that reaches max_position_embeddings, so leave plenty of room.
    text.max_position_embeddings = 8192
    if getattr(text, "layer_types", None) is not None:
        text.layer_types = [text.layer_types[0]] * layers
    text.rope_parameters["mrope_section"] = [quarter - 2 * (quarter // 3), quarter // 3, quarter // 3]
    config.vision_config.out_hidden_size = hidden
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config)
    processor = AutoProcessor.from_pretrained(tiny)
    model.generation_config = AutoModelForImageTextToText.from_pretrained(tiny).generation_config
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    (path / "mira_seed.json").write_text(json.dumps({"seed": seed}))
    return path


def train_bpe_tokenizer(texts: Sequence[str], vocab_size: int):
    """A byte-level BPE ``Qwen2Tokenizer`` trained offline on ``texts`` (the run's own prompts and answers),
    with the Qwen special and added tokens appended exactly like the tiny build's byte-level tokenizer.

    Why: the byte-level tiny tokenizer spends ~1100 tokens on every turn's tool prompt and ~35 on every
    instruction; with merges learned from the run's own text the same turn takes a few hundred tokens and
    an instruction a handful, so a CPU-sized model can learn the content of the instructions at all.
    """
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    from mira_env.tiny.vlm import ADDED_TOKENS, SPECIAL_TOKENS

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    strip = SPECIAL_TOKENS + ADDED_TOKENS

    def cleaned():
        for text in texts:
            for token in strip:
                text = text.replace(token, " ")
            yield text

    bpe.train_from_iterator(cleaned(), trainer)
    model = json.loads(bpe.to_str())["model"]
    vocab = dict(model["vocab"])
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    for token in strip:
        vocab[token] = len(vocab)
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                               unk_token=None, errors="replace")
    tokenizer.add_special_tokens({"additional_special_tokens": list(SPECIAL_TOKENS)})
    tokenizer.add_tokens([AddedToken(token, special=False, normalized=False) for token in ADDED_TOKENS])
    tokenizer.model_max_length = 32768
    return tokenizer


def corpus_texts(samples: Sequence[dict], processor) -> list[str]:
    """The rendered SFT samples (tool prompt of multi-turn samples, conversation and answer): the BPE
    tokenizer's training text."""
    from mira_env.train.tools import tool_schemas

    tools = tool_schemas()
    return [processor.apply_chat_template(list(s["prompt"]) + [{"role": "assistant", "content": s["completion"]}],
                                          tools=tools if s.get("tools") else None, tokenize=False) for s in samples]


def with_tokenizer(path: Path, tokenizer) -> Path:
    """Rebuild the model saved at ``path`` around ``tokenizer``: new embedding size and token ids, the
    same seed and architecture otherwise (random init), saved back to ``path``."""
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor, GenerationConfig

    config = AutoConfig.from_pretrained(path)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>",
                                                            "<|vision_end|>", "<|endoftext|>", "<|im_end|>")}
    config.image_token_id, config.video_token_id = ids["<|image_pad|>"], ids["<|video_pad|>"]
    config.vision_start_token_id, config.vision_end_token_id = ids["<|vision_start|>"], ids["<|vision_end|>"]
    text = config.text_config
    text.vocab_size = len(tokenizer)
    text.pad_token_id = text.bos_token_id = ids["<|endoftext|>"]
    text.eos_token_id = ids["<|im_end|>"]
    processor = AutoProcessor.from_pretrained(path)
    processor.tokenizer = tokenizer
    torch.manual_seed(int(json.loads((path / "mira_seed.json").read_text())["seed"]))
    model = AutoModelForImageTextToText.from_config(config)
    model.generation_config = GenerationConfig(bos_token_id=ids["<|endoftext|>"], pad_token_id=ids["<|endoftext|>"],
                                               eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]])
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def mcnemar(first: Sequence[bool], second: Sequence[bool]) -> dict:
    """Exact McNemar test of paired successes (:func:`mira_env.agents.intervals.mcnemar_test`)."""
    from mira_env.agents.intervals import mcnemar_test

    return mcnemar_test(first, second)


def summarize(name: str, records: Sequence[Any], stats: Any = None) -> dict:
    """Success (Wilson 95%), mean oracle score and edits of one stage's episode records
    (:func:`mira_env.agents.play.success_stats`)."""
    from mira_env.agents.play import success_stats

    figures, n = success_stats(records), len(records)
    out = {"policy": name, "n": n, "successes": figures.successes, "success_rate": figures.success_rate,
           "wilson95": wilson(figures.successes, n), "mean_oracle_score": figures.mean_score,
           "mean_edits": sum(int(r.num_edits or 0) for r in records) / max(n, 1)}
    if stats is not None:
        out["monitor"] = stats.to_dict()
    return out


def export_records(out: Path, split: str, num_tasks: int, difficulty: int, resolution: int, seed: int,
                   noise_ignore: float = 0.0, max_steps: int | None = None) -> Path:
    """``mira export`` of ``num_tasks`` tasks with their oracle trajectories (skipped when already there);
    ``noise_ignore`` > 0 exports trajectories with re-issued ignored edits within ``max_steps``."""
    if not (out / "records.jsonl").is_file():
        noisy = ["--noise_ignore", str(noise_ignore), "--noise_seed", str(seed), "--max_steps", str(max_steps)]
        subprocess.run([sys.executable, "-m", "mira_env.train.cli", "export", "--out", str(out), "--split", split,
                        "--num_tasks", str(num_tasks), "--difficulty", str(difficulty), "--resolution",
                        str(resolution), "--seed", str(seed), "--progress", "false",
                        *(noisy if noise_ignore > 0 else [])], check=True)
    return out


def _callbacks():
    from transformers import TrainerCallback

    class TimeBudget(TrainerCallback):
        def __init__(self, minutes: float) -> None:
            self.seconds, self.start = minutes * 60.0, None

        def on_train_begin(self, args, state, control, **kwargs):
            self.start = time.time()

        def on_step_end(self, args, state, control, **kwargs):
            if self.start is not None and time.time() - self.start > self.seconds:
                control.should_training_stop = True

    class HeldOutCurve(TrainerCallback):
        """Validation success of the policy every ``every`` steps (the SFT learning curve)."""

        def __init__(self, env, every: int, tasks: int, seed: int) -> None:
            self.env, self.every, self.tasks, self.seed, self.points = env, every, tasks, seed, []

        def on_step_end(self, args, state, control, model=None, processing_class=None, **kwargs):
            if state.global_step % self.every == 0 or control.should_training_stop:
                self.point(state.global_step, model, processing_class)

        def point(self, step, model, processor):
            from mira_env.agents.episode_stats import episode_stats
            from mira_env.agents.play import play_episodes

            records, folder = play_episodes(self.env, task_indices=list(range(self.tasks)), model=model,
                                            processor=processor, seed=self.seed)
            stats = episode_stats(records, folder)
            self.points.append({"step": int(step), **stats.to_dict(),
                                "example": [s.raw_output for s in records[0].steps]})
            print("SFT curve", json.dumps(self.points[-1]), flush=True)

    return TimeBudget, HeldOutCurve


def run(cfg: LearningConfig) -> dict:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from mira_env.agents.baselines import ScriptedOracleAgent
    from mira_env.agents.episode_stats import episode_stats
    from mira_env.rewards import build_reward
    from mira_env.shapes import make_shapes_env
    from mira_env.train.data import build_sft_samples, load_records
    from mira_env.train.grpo import build_dataset, resolve as grpo_resolve, train_grpo
    from mira_env.agents.play import play_episodes
    from mira_env.train.monitor import AlarmConfig, RewardHackingMonitor
    from mira_env.train.sft import resolve as sft_resolve, train_sft

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    started = time.time()
    common = dict(difficulty=cfg.difficulty, resolution=cfg.resolution, max_steps=cfg.budget)
    noise = cfg.noise_spec
    eval_env = make_shapes_env(split="test", num_tasks=cfg.eval_tasks, noise=noise, reward="oracle", **common)
    val_env = make_shapes_env(split="validation", num_tasks=cfg.curve_tasks, noise=noise, reward="oracle", **common)
    eval_seed = cfg.seed + 7  # editor seeds of test task i: group_seed(eval_seed, i, 0), for every stage
    results: dict[str, Any] = {"config": asdict(cfg), "noise": noise, "stages": [], "paired": {}}
    successes: dict[str, list[bool]] = {}

    def save() -> None:
        results["timings"] = {**timings, "total_s": time.time() - started}
        (out / "results.json").write_text(json.dumps(results, indent=2))

    def evaluate(name: str, path: str | None = None, agent: Any = None) -> None:
        t = time.time()
        model = processor = None
        if agent is None:
            processor = AutoProcessor.from_pretrained(path)
            model = AutoModelForImageTextToText.from_pretrained(path).eval()
        records, folder = play_episodes(eval_env, agent, list(range(cfg.eval_tasks)), model=model, processor=processor,
                                        seed=eval_seed, run_dir=out / "eval" / name, name=name)
        summary = summarize(name, records, episode_stats(records, folder))
        summary["eval_seconds"] = time.time() - t
        summary["examples"] = [[s.raw_output or s.action for s in r.steps] for r in records[:3]]
        successes[name] = [bool(r.success) for r in records]
        results["stages"].append(summary)
        print(json.dumps({k: v for k, v in summary.items() if k != "monitor"}), flush=True)
        save()

    # 0. fresh SFT data (mira export) and the random-init policy with a BPE tokenizer trained on its text only
    export = export_records(out / "export_train", "train", cfg.sft_tasks, cfg.difficulty, cfg.resolution, cfg.seed,
                            noise_ignore=cfg.sft_noise, max_steps=cfg.budget)
    short = (export_records(out / "export_short", "train", cfg.short_tasks, cfg.difficulty, cfg.resolution,
                            cfg.seed + 2) if cfg.short_tasks > 0 else None)
    base = build_small_vlm(out / "init", cfg.hidden, cfg.layers, cfg.seed)
    if not (base / "mira_bpe.json").is_file():
        samples = build_sft_samples(load_records(str(export))[:700], format="multi_turn", system_prompt="",
                                    max_steps=cfg.budget)
        if short is not None:
            samples += build_sft_samples(load_records(str(short))[:700], format="single_turn", system_prompt="")
        texts = corpus_texts(samples, AutoProcessor.from_pretrained(base))
        with_tokenizer(base, train_bpe_tokenizer(texts, cfg.bpe_vocab))
        (base / "mira_bpe.json").write_text(json.dumps({"vocab": cfg.bpe_vocab, "texts": len(texts)}))
        del samples
    evaluate("oracle", agent=ScriptedOracleAgent(replan=True))
    evaluate("oracle_open_loop", agent=ScriptedOracleAgent(replan=False))
    if cfg.eval_untrained:
        evaluate("untrained", str(base))
    time_budget, curve_cls = _callbacks()

    def sft_stage(name: str, start: Path, records: Path, sample_format: str, steps: int, batch: int, minutes: float,
                  scheduler: str, callbacks: list) -> Path:
        """One `mira train sft` stage (one pass over fresh records, a wall-clock budget) from ``start``."""
        t, folder = time.time(), out / name
        if not (folder / "model.safetensors").is_file():
            model_args, data_args, sft_config = sft_resolve({
                "model_name_or_path": str(start), "records": str(records), "output_dir": str(folder),
                "max_steps": steps, "per_device_train_batch_size": batch, "learning_rate": cfg.sft_lr,
                "lr_scheduler_type": scheduler, "warmup_steps": 20, "save_steps": 100_000,
                "logging_steps": 10, "seed": cfg.seed, "system_prompt": "", "sample_format": sample_format,
                "edit_budget": cfg.budget, "loss_turns": cfg.sft_loss_turns if sample_format == "multi_turn" else "last",
                "disable_tqdm": True})
            sft = train_sft(model_args, data_args, sft_config, callbacks=[time_budget(minutes), *callbacks])
            results[f"{name}_log"] = sft.trainer.state.log_history
            results[f"{name}_samples"] = sft.num_samples
        timings[f"{name}_s"] = time.time() - t
        return folder

    # 1a. short-context SFT (single_turn: no tool block, ~1/4 of the tokens): the copy skill where C is near
    start = base
    if short is not None:
        start = sft_stage("sft_short", base, short, "single_turn", cfg.short_steps, cfg.short_batch,
                          cfg.short_minutes, "constant_with_warmup", [])
        evaluate("sft_short", str(start))
    # 1b. SFT in the tool conversation GRPO and evaluation use, from stage 1a; a held-out curve
    curve = curve_cls(val_env, cfg.curve_every, cfg.curve_tasks, cfg.seed + 11)
    sft_dir = sft_stage("sft", start, export, "multi_turn", cfg.sft_steps, cfg.sft_batch, cfg.sft_minutes,
                        cfg.sft_scheduler, [curve])
    results["sft_curve"] = curve.points
    evaluate("sft", str(sft_dir))
    # 2. GRPO from the SFT policy under editor noise: reward oracle_progress + success bonus, scored every step
    reward = build_reward({"terms": [{"name": "oracle_progress", "params": {"success_bonus": cfg.success_bonus}}]})
    grpo_env = make_shapes_env(split="train", num_tasks=cfg.grpo_tasks, noise=noise, seed=cfg.seed + 1,
                               reward=reward, reward_mode="every_step", **common)
    rows = cfg.grpo_steps * cfg.grpo_batch // cfg.group
    dataset = build_dataset(grpo_env, num_rows=rows, seed=cfg.seed, system_prompt="")
    results["grpo"] = {}
    for credit in cfg.credit_list:
        t = time.time()
        monitor = RewardHackingMonitor(val_env, every_steps=cfg.monitor_every, num_tasks=cfg.curve_tasks,
                                       seed=cfg.seed + 11, out=out / f"monitor_{credit}.jsonl", alarm=AlarmConfig())
        model_args, env_args, grpo_config = grpo_resolve({
            "model_name_or_path": str(sft_dir), "output_dir": str(out / f"grpo_{credit}"), "max_steps": cfg.grpo_steps,
            "num_generations": cfg.group, "per_device_train_batch_size": cfg.grpo_batch,
            "learning_rate": cfg.grpo_lr, "beta": cfg.beta, "max_tool_calling_iterations": cfg.budget,
            "max_completion_length": 384, "temperature": cfg.grpo_temperature, "save_steps": 100_000, "logging_steps": 1,
            "seed": cfg.seed, "system_prompt": "", "tasks": "shapes", "reward": "composite",
            "reward_terms": ["oracle_progress"], "scale_rewards": "group", "loss_type": "dapo",
            "advantage": credit, "disable_tqdm": True})
        grpo = train_grpo(model_args, env_args, grpo_config, env=grpo_env, dataset=dataset, callbacks=[monitor])
        timings[f"grpo_{credit}_s"] = time.time() - t
        results["grpo"][credit] = {"log": grpo.trainer.state.log_history,
                                   "monitor": [p.to_dict() for p in monitor.series], "alarms": monitor.alarms}
        name = f"sft_grpo_{credit}"
        evaluate(name, grpo.output_dir)
        results["paired"][f"{name} vs sft"] = mcnemar(successes["sft"], successes[name])
        save()
    if len(cfg.credit_list) == 2:
        a, b = (f"sft_grpo_{c}" for c in cfg.credit_list)
        results["paired"][f"{b} vs {a}"] = mcnemar(successes[a], successes[b])
    results["summary"] = summary_of(cfg, results)
    save()
    plot(results, out / "learning.png")
    return results


def summary_of(cfg: LearningConfig, results: dict) -> dict:
    """The ``summary`` object: SFT vs the first GRPO variant on the same held-out tasks, editor seeds and noise."""
    stages = {s["policy"]: s for s in results["stages"]}
    primary = f"sft_grpo_{cfg.credit_list[0]}"
    sft, grpo, oracle = stages["sft"], stages[primary], stages["oracle"]
    paired = results["paired"][f"{primary} vs sft"]
    bar = sft["success_rate"] >= 0.30 and grpo["successes"] > sft["successes"] and paired["p_value"] < 0.05
    return {
        "n_tasks": sft["n"], "sft_successes": sft["successes"], "grpo_successes": grpo["successes"],
        "grpo_variant": primary, "sft_wilson95": sft["wilson95"], "grpo_wilson95": grpo["wilson95"],
        "paired_test": "exact McNemar (two-sided binomial on discordant tasks)", "paired_p_value": paired["p_value"],
        "discordant": {"grpo_only": paired["second_only"], "sft_only": paired["first_only"]},
        "oracle_successes": oracle["successes"], "oracle_wilson95": oracle["wilson95"],
        "oracle_open_loop_successes": stages["oracle_open_loop"]["successes"],
        "eval_noise": results["noise"], "eval_split": "test", "editor_seeds": "group_seed(seed + 7, task index, 0)",
        "setting": {"difficulty": cfg.difficulty, "resolution": cfg.resolution, "budget": cfg.budget,
                    "training_seeds": 1, "policy": f"random-init Qwen2.5-VL architecture, hidden {cfg.hidden}, "
                                                   f"{cfg.layers} layers, BPE {cfg.bpe_vocab}"},
        "bar_met": bool(bar),
    }


def plot(results: dict, path: Path) -> None:
    """SFT loss and held-out curve, GRPO reward and monitor series per credit variant, every stage's success."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(22, 4))
    short = [(e["step"], e["loss"]) for e in results.get("sft_short_log", []) if "loss" in e]
    offset = short[-1][0] if short else 0
    if short:
        axes[0].plot(*zip(*short), label="loss, short-context stage (single_turn)")
    sft = [(e["step"] + offset, e["loss"]) for e in results.get("sft_log", []) if "loss" in e]
    if sft:
        axes[0].plot(*zip(*sft), label="loss, tool-conversation stage (multi_turn, all answers)")
        axes[0].legend(fontsize=7, loc="upper right")
    curve = results.get("sft_curve", [])
    if curve:
        ax = axes[0].twinx()
        ax.plot([p["step"] + offset for p in curve], [p["heldout_success"] or 0 for p in curve], "o-", color="C1",
                label="validation success")
        ax.set_ylim(0, 1)
    axes[0].set(title="SFT: loss (answer tokens), validation success", xlabel="SFT step (both stages)")
    for credit, data in results.get("grpo", {}).items():
        points = [(e["step"], e["reward"]) for e in data["log"] if "reward" in e]
        if points:
            axes[1].plot(*zip(*points), label=f"{credit}: training reward")
        mon = data["monitor"]
        axes[3].plot([p["step"] for p in mon], [p["heldout_success"] or 0 for p in mon], "o-",
                     label=f"{credit}: validation success")
        axes[3].plot([p["step"] for p in mon], [p["noop_rate"] or 0 for p in mon], "x--", label=f"{credit}: no-op rate")
    axes[1].set(title="GRPO training reward (oracle_progress + bonus)", xlabel="step")
    axes[1].legend(fontsize=7)
    axes[3].set(title="reward-hacking monitor (validation)", xlabel="GRPO step", ylim=(0, 1))
    axes[3].legend(fontsize=7)
    stages = results.get("stages", [])
    names = [s["policy"] for s in stages]
    rates = [s["success_rate"] for s in stages]
    errs = [[r - s["wilson95"][0] for r, s in zip(rates, stages)], [s["wilson95"][1] - r for r, s in zip(rates, stages)]]
    axes[2].bar(names, rates, yerr=errs, capsize=6, color="#4c72b0")
    axes[2].set(title="held-out test success (Wilson 95%)", ylim=(0, 1))
    axes[2].tick_params(axis="x", labelrotation=30, labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    from mira_env.train.config import add_dataclass_arguments, resolve_config

    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a plumbing check in minutes")
    add_dataclass_arguments(parser, LearningConfig, "learning")
    args = vars(parser.parse_args(argv))
    smoke = args.pop("smoke")
    if smoke:
        args = {**dict(short_tasks=8, short_steps=4, short_batch=2, sft_tasks=8, sft_steps=4, sft_batch=2,
                       curve_every=2, curve_tasks=2, grpo_tasks=4, grpo_steps=2, group=2, grpo_batch=4,
                       monitor_every=1, eval_tasks=4, hidden=64, layers=2),
                **{k: v for k, v in args.items() if v is not None}}
    (cfg,) = resolve_config((LearningConfig,), args)
    import torch

    torch.set_num_threads(cfg.threads)  # tiny models: intra-op threads cost more than they give on 2 cores
    results = run(cfg)
    print(json.dumps(results.get("summary"), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
