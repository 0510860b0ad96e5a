"""The shapes-world learning result: untrained -> SFT -> SFT + GRPO, against the oracle, on held-out tasks.

What it is, honestly: a small Qwen2.5-VL-ARCHITECTURE model (``Qwen2_5_VLForConditionalGeneration``,
a few million parameters, byte-level tokenizer) initialised at RANDOM and trained on this CPU through
the real pipeline: ``mira train sft`` code on oracle trajectories (multi-turn format), then ``mira
train grpo`` code (TRL GRPOTrainer, environment_factory, edited images in the loss) with editor
noise on. Evaluation plays held-out test-split episodes with greedy decoding in the same multi-turn
conversation, and reports the shapes-world success rate with a Wilson 95% interval.

    python -m mira_env.train.learning --out runs/learning            # the full run (scripts/learning_result.sh)
    python -m mira_env.train.learning --out /tmp/l --smoke           # minutes-long plumbing check
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from tqdm.auto import tqdm


@dataclass
class LearningConfig:
    """Sizes of the learning run."""

    out: str = field(default="runs/learning", metadata={"help": "Output folder (models, logs, results)."})
    difficulty: int = field(default=1, metadata={"help": "Shapes-world difficulty of every task."})
    resolution: int = field(default=56, metadata={"help": "Image resolution."})
    budget: int = field(default=3, metadata={"help": "Edit budget T (max_tool_calling_iterations)."})
    noise: float = field(default=0.15, metadata={"help": "Editor noise during GRPO and evaluation."})
    sft_tasks: int = field(default=400, metadata={"help": "Training tasks with oracle trajectories for SFT."})
    sft_steps: int = field(default=300, metadata={"help": "SFT optimizer steps."})
    sft_batch: int = field(default=8, metadata={"help": "SFT batch size."})
    sft_lr: float = field(default=3e-3, metadata={"help": "SFT learning rate."})
    grpo_tasks: int = field(default=64, metadata={"help": "Training tasks for GRPO."})
    grpo_steps: int = field(default=40, metadata={"help": "GRPO optimizer steps."})
    group: int = field(default=8, metadata={"help": "GRPO group size (num_generations)."})
    grpo_batch: int = field(default=16, metadata={"help": "Completions per GRPO step (a multiple of group)."})
    grpo_lr: float = field(default=2e-4, metadata={"help": "GRPO learning rate."})
    beta: float = field(default=0.0, metadata={"help": "GRPO KL coefficient."})
    eval_tasks: int = field(default=96, metadata={"help": "Held-out test-split tasks per evaluation."})
    hidden: int = field(default=128, metadata={"help": "Hidden size of the policy's language model."})
    layers: int = field(default=3, metadata={"help": "Layers of the policy's language model."})
    seed: int = field(default=0, metadata={"help": "Seed of model init, data and evaluation."})
    tokenizer: str = field(default="bpe", metadata={
        "help": "'bpe': a byte-level BPE trained offline on the SFT samples' text (vocab --bpe_vocab); 'byte': the "
                "tiny build's byte-level tokenizer (~1100 tokens per tool prompt)."})
    bpe_vocab: int = field(default=1024, metadata={"help": "BPE vocabulary size (before the special tokens)."})
    success_bonus: float = field(default=1.0, metadata={
        "help": "GRPO reward = oracle score + success_bonus on an exact match (evaluation always reports success)."})
    threads: int = field(default=1, metadata={"help": "torch intra-op threads."})


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


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
    """The rendered SFT samples (tool prompt, conversation and answer): the BPE tokenizer's training text."""
    from mira_env.train.tools import tool_schemas

    tools = tool_schemas()
    return [processor.apply_chat_template(list(s["prompt"]) + [{"role": "assistant", "content": s["completion"]}],
                                          tools=tools, tokenize=False) for s in samples]


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


def oracle_records(env, count: int) -> list:
    """MIRA-Editing records of the tasks' oracle programs, executed in ``env`` (noise off)."""
    from mira_env.records import EditingRecord, TrajectoryStep

    records = []
    for index in range(count):
        env.reset(seed=index, options={"task": index})
        task = env.task
        steps = []
        for instruction in task.atomic_instructions:
            env.step(instruction)
            steps.append(TrajectoryStep(instruction, image=env.current_image.copy()))
        records.append(EditingRecord(id=task.id, complex_instruction=task.instruction,
                                     source_image=env.source_image, trajectory=steps))
    return records


def play(model, processor, env, task_indices: Sequence[int], seeds: Sequence[int], *, budget: int,
         system_prompt: str | None = "", batch_size: int = 32, oracle: bool = False,
         max_new_tokens: int = 96) -> list[dict]:
    """Play one greedy episode per task in the GRPO multi-turn conversation; return per-episode results.

    ``oracle=True`` plays the shapes-world planner instead of the model (the oracle baseline).
    """
    import torch

    from mira_env.actions import STOP, parse_action
    from mira_env.agents.prompt import build_messages
    from mira_env.shapes import next_edit
    from mira_env.train.model import generation_suppression
    from mira_env.train.tools import tool_result_content, tool_schemas

    results = []
    suppress = generation_suppression(processor) if processor is not None else {}
    tools = tool_schemas()
    for start in tqdm(range(0, len(task_indices), batch_size), desc="evaluate", leave=False):
        chunk = list(range(start, min(start + batch_size, len(task_indices))))
        envs, convs, done, infos, answers = [], [], [], [], []
        for i in chunk:
            e = type(env)(editor=env.editor, tasks=env.tasks, reward=env.reward_fn, config=env.config)
            _, info = e.reset(options={"task": int(task_indices[i]), "editor_seed": int(seeds[i])})
            envs.append(e)
            infos.append(info)
            convs.append(build_messages(e.task.instruction, e.source_image, e.source_image, [],
                                        system_prompt=system_prompt))
            done.append(False)
            answers.append([])
        for turn in range(budget + 1):
            active = [j for j in range(len(envs)) if not done[j]]
            if not active:
                break
            if oracle:
                texts = []
                for j in active:
                    step = next_edit(infos[j]["state"], envs[j].task.metadata["target_scene"])
                    texts.append(STOP if step is None else f"<edit>{step[1]}</edit>")
            else:
                batch = processor.apply_chat_template([convs[j] for j in active], tools=tools,
                                                      add_generation_prompt=True, tokenize=True, return_dict=True,
                                                      processor_kwargs={"padding": True, "padding_side": "left"},
                                                      return_tensors="pt")
                with torch.no_grad():
                    out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, **suppress)
                texts = processor.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
            for j, text in zip(active, texts):
                answers[j].append(text)
                parsed = parse_action(text, envs[j].config.max_instruction_length)
                e = envs[j]
                if turn == budget or e.done:  # budget used up: the episode is already scored
                    done[j] = True
                    continue
                if parsed.ok and parsed.action == STOP:
                    _, _, _, _, info = e.step(STOP)
                    infos[j] = info
                    done[j] = True
                    continue
                if not parsed.ok:  # no <edit> tool call: the rollout ends there, as in GRPO
                    done[j] = True
                    continue
                _, _, terminated, truncated, info = e.step(parsed.action)
                infos[j] = info
                convs[j] = convs[j] + [{"role": "assistant", "content": [{"type": "text", "text": text.strip()}]},
                                       {"role": "tool", "name": "edit",
                                        "content": tool_result_content(e.current_image, info["step"], budget,
                                                                       info["editor_error"])}]
                if terminated or truncated:
                    done[j] = True
        for j, e in enumerate(envs):
            comps = infos[j].get("reward_components") or {}
            if not comps:  # never scored (no terminal step): score the final image now
                (output,) = e.reward_fn.score([e.reward_input()])
                comps = dict(output.components)
            results.append({"task_id": e.task.id, "success": float(comps.get("success") or 0.0),
                            "oracle": float(comps.get("oracle") or 0.0), "edits": len(e.history),
                            "answers": answers[j]})
    return results


def summarize(name: str, results: list[dict]) -> dict:
    n = len(results)
    wins = int(sum(r["success"] >= 0.5 for r in results))
    low, high = wilson(wins, n)
    return {"policy": name, "n": n, "successes": wins, "success_rate": wins / n if n else 0.0,
            "wilson95": [low, high], "mean_oracle_score": sum(r["oracle"] for r in results) / max(n, 1),
            "mean_edits": sum(r["edits"] for r in results) / max(n, 1)}


def run(cfg: LearningConfig) -> dict:
    import numpy as np
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from mira_env.shapes import make_shapes_env
    from mira_env.train.data import record_samples
    from mira_env.train.grpo import build_dataset, resolve as grpo_resolve, train_grpo
    from mira_env.train.sft import resolve as sft_resolve, train_sft

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    started = time.time()
    common = dict(difficulty=cfg.difficulty, resolution=cfg.resolution, max_steps=cfg.budget, reward="oracle")
    eval_env = make_shapes_env(split="test", num_tasks=cfg.eval_tasks, noise=cfg.noise, seed=cfg.seed + 2, **common)
    eval_seeds = np.random.default_rng(cfg.seed + 7).integers(0, 2**31 - 1, size=cfg.eval_tasks)
    eval_idx = list(range(cfg.eval_tasks))
    results: dict[str, Any] = {"config": asdict(cfg), "stages": []}

    def evaluate(name: str, path: str | None, oracle: bool = False) -> None:
        t = time.time()
        model = processor = None
        if not oracle:
            processor = AutoProcessor.from_pretrained(path)
            model = AutoModelForImageTextToText.from_pretrained(path).eval()
        episodes = play(model, processor, eval_env, eval_idx, eval_seeds, budget=cfg.budget, oracle=oracle)
        summary = summarize(name, episodes)
        summary["eval_seconds"] = time.time() - t
        results["stages"].append(summary)
        (out / f"episodes_{name}.jsonl").write_text("\n".join(json.dumps(e) for e in episodes) + "\n")
        print(json.dumps(summary), flush=True)
        (out / "results.json").write_text(json.dumps(results, indent=2))

    # 0. SFT samples: oracle trajectories of training-split tasks (noise off), multi-turn format (what GRPO
    #    shows the policy); the policy: random init, with a BPE tokenizer trained on these samples' text only
    sft_env = make_shapes_env(split="train", num_tasks=cfg.sft_tasks, noise=None, seed=cfg.seed, **common)
    samples = [s for r in oracle_records(sft_env, cfg.sft_tasks)
               for s in record_samples(r, format="multi_turn", system_prompt="", max_steps=cfg.budget)]
    base = build_small_vlm(out / "init", cfg.hidden, cfg.layers, cfg.seed)
    if cfg.tokenizer == "bpe" and not (base / "mira_bpe.json").is_file():
        texts = corpus_texts(samples, AutoProcessor.from_pretrained(base))
        with_tokenizer(base, train_bpe_tokenizer(texts, cfg.bpe_vocab))
        (base / "mira_bpe.json").write_text(json.dumps({"vocab": cfg.bpe_vocab, "texts": len(texts)}))
    first_turn = corpus_texts(samples[:1], AutoProcessor.from_pretrained(base))[0]
    results["text_tokens_first_sample"] = len(AutoProcessor.from_pretrained(base).tokenizer(first_turn)["input_ids"])
    evaluate("oracle", None, oracle=True)
    evaluate("untrained", str(base))
    # 1. SFT
    t = time.time()
    model_args, data_args, sft_config = sft_resolve({
        "model": str(base), "output_dir": str(out / "sft"), "max_steps": cfg.sft_steps,
        "per_device_train_batch_size": cfg.sft_batch, "learning_rate": cfg.sft_lr, "lr_scheduler_type": "cosine",
        "warmup_steps": 10, "save_steps": 10_000, "logging_steps": 5, "seed": cfg.seed, "system_prompt": "",
        "sample_format": "multi_turn", "edit_budget": cfg.budget,
        "disable_tqdm": True})
    sft_dir = out / "sft"
    if (sft_dir / "model.safetensors").is_file() and (out / "sft_log.json").is_file():  # a finished SFT stage
        results["sft_log"] = json.loads((out / "sft_log.json").read_text())
        timings["sft_s"] = float(json.loads((out / "sft_time.json").read_text())["sft_s"])
    else:
        sft = train_sft(model_args, data_args, sft_config, samples=samples)
        timings["sft_s"] = time.time() - t
        results["sft_log"] = sft.trainer.state.log_history
        (out / "sft_log.json").write_text(json.dumps(results["sft_log"]))
        (out / "sft_time.json").write_text(json.dumps({"sft_s": timings["sft_s"]}))
    results["sft_samples"] = len(samples)
    evaluate("sft", str(sft_dir))
    # 2. GRPO from the SFT policy, editor noise on, oracle reward
    t = time.time()
    from mira_env.shapes.oracle import ShapesOracleReward

    # GRPO's reward: the oracle score plus success_bonus on an exact match (the bare oracle score pays ~0.8 for
    # doing nothing, so without a bonus a policy that cannot yet succeed learns to stop editing)
    grpo_env = make_shapes_env(split="train", num_tasks=cfg.grpo_tasks, noise=cfg.noise, seed=cfg.seed + 1,
                               **{**common, "reward": ShapesOracleReward(success_bonus=cfg.success_bonus)})
    dataset = build_dataset(grpo_env, num_rows=cfg.grpo_steps * cfg.grpo_batch // cfg.group, seed=cfg.seed,
                            system_prompt="")
    model_args, env_args, grpo_config = grpo_resolve({
        "model": str(sft_dir), "output_dir": str(out / "grpo"), "max_steps": cfg.grpo_steps,
        "num_generations": cfg.group, "per_device_train_batch_size": cfg.grpo_batch,
        "learning_rate": cfg.grpo_lr, "beta": cfg.beta, "max_tool_calling_iterations": cfg.budget,
        "max_completion_length": 512, "temperature": 1.0, "save_steps": 10_000, "logging_steps": 1,
        "seed": cfg.seed, "system_prompt": "", "tasks": "shapes", "reward": "oracle", "scale_rewards": "group",
        "loss_type": "dapo", "disable_tqdm": True})
    grpo = train_grpo(model_args, env_args, grpo_config, env=grpo_env, dataset=dataset)
    timings["grpo_s"] = time.time() - t
    results["grpo_log"] = grpo.trainer.state.log_history
    evaluate("sft_grpo", grpo.output_dir)
    timings["total_s"] = time.time() - started
    results["timings"] = timings
    (out / "results.json").write_text(json.dumps(results, indent=2))
    plot(results, out / "learning.png")
    return results


def plot(results: dict, path: Path) -> None:
    """SFT loss, GRPO reward / success curves, and the held-out success of every stage with its CI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(20, 4))
    sft = [(e["step"], e["loss"]) for e in results.get("sft_log", []) if "loss" in e]
    if sft:
        axes[0].plot(*zip(*sft))
    axes[0].set(title="SFT loss (answer tokens)", xlabel="step", ylabel="loss")
    grpo = results.get("grpo_log", [])
    for key, label in (("reward", "reward (total)"), ("reward/oracle", "oracle score"), ("reward/success", "success")):
        points = [(e["step"], e[key]) for e in grpo if key in e]
        if points:
            axes[1].plot(*zip(*points), label=label)
    axes[1].set(title="GRPO training rollouts (noise on), batch means", xlabel="step")
    axes[1].legend()
    for key, label in (("episode/edits", "edits per episode"), ("episode/stopped", "answered <STOP>"),
                       ("reward_std", "reward std (within groups)")):
        points = [(e["step"], e[key]) for e in grpo if key in e]
        if points:
            axes[3].plot(*zip(*points), label=label)
    axes[3].set(title="GRPO episodes", xlabel="step")
    axes[3].legend()
    stages = results.get("stages", [])
    names = [s["policy"] for s in stages]
    rates = [s["success_rate"] for s in stages]
    errs = [[r - s["wilson95"][0] for r, s in zip(rates, stages)], [s["wilson95"][1] - r for r, s in zip(rates, stages)]]
    axes[2].bar(names, rates, yerr=errs, capsize=6, color="#4c72b0")
    axes[2].set(title="held-out success (Wilson 95%)", ylim=(0, 1))
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
        args = {**dict(sft_tasks=8, sft_steps=4, sft_batch=2, grpo_tasks=4, grpo_steps=2, group=4, grpo_batch=4,
                       eval_tasks=4, hidden=64, layers=2), **args}
    (cfg,) = resolve_config((LearningConfig,), args)
    import torch

    torch.set_num_threads(cfg.threads)  # tiny models: intra-op threads cost more than they give on 2 cores
    results = run(cfg)
    print(json.dumps(results["stages"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
