"""Wall time of one multi-turn GRPO step (tool environment) vs one plain single-turn GRPO step.

Both trainers are TRL 1.16 ``GRPOTrainer`` on the SAME policy, dataset rows (shapes-world prompts with
I0 twice), group size and batch; measured in one run on this machine:

- multi-turn: :func:`mira_env.train.grpo.train_grpo` with ``environment_factory`` (every ``<edit>X</edit>`` runs the
  shapes-world editor through ``EditEnv.step``, the edited image goes back into the conversation and
  into the loss; the episode is scored by the oracle reward);
- single-turn: the same trainer config without tools: one answer per rollout, scored by a cheap format
  reward (did it answer ``<edit>...</edit>`` or ``<STOP>``).

The policy is the tiny random Qwen2.5-VL of :mod:`mira_env.tiny.vlm`, first SFT'd for a few seconds on
two fixed real shapes-world trajectories (``BENCH_EDITS`` then ``<STOP>``, multi-turn format) so that its
rollouts really call the edit tool on most turns (a random policy never would, and the multi-turn step
would degenerate into a single turn); the tool-call rate is reported with the times. The step time
is measured by a trainer callback (``on_step_begin`` -> ``on_step_end``: generation, tools, rewards, loss,
optimizer); the first step is a warm-up and is not counted.

    python bench/bench_grpo.py [--steps 4] [--group 8] [--batch 16] [--budget 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


def step_timer():
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self._t = 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self._t = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.times.append(time.perf_counter() - self._t)

    return StepTimer()


#: The bench policy's trajectory: real shapes-world edits with a fixed text, so a few seconds of SFT make the
#: tiny policy call the tool on every turn of the budget (its answers' content does not matter for timing).
BENCH_EDITS = ("make the background white", "make the background black")


def sft_policy(root: Path, budget: int, steps: int) -> Path:
    """The tiny Qwen2.5-VL, SFT'd to answer <edit>BENCH_EDITS[0]</edit>, <edit>BENCH_EDITS[1]</edit>, <STOP>."""
    from mira_env.records import EditingRecord, TrajectoryStep
    from mira_env.shapes import make_shapes_env
    from mira_env.tiny.vlm import build_tiny_vlm
    from mira_env.train.data import record_samples
    from mira_env.train.sft import resolve, train_sft

    base = build_tiny_vlm("qwen2_5_vl", root / "tiny", seed=0)
    config = json.loads((base / "config.json").read_text())
    config["text_config"]["max_position_embeddings"] = 8192  # the byte-level tool prompt is ~1100 tokens
    (base / "config.json").write_text(json.dumps(config))
    env = make_shapes_env(split="train", num_tasks=2, difficulty=1, resolution=56, max_steps=budget, reward="oracle")
    records = []
    for index in range(2):
        env.reset(options={"task": index})
        trajectory = []
        for text in BENCH_EDITS[: budget - 1]:
            env.step(text)
            trajectory.append(TrajectoryStep(text, image=env.unwrapped.current_image.copy()))
        records.append(EditingRecord(id=f"bench-{index}", complex_instruction=env.unwrapped.task.instruction,
                                     source_image=env.unwrapped.source_image, trajectory=trajectory))
    samples = [s for r in records for s in record_samples(r, format="multi_turn", system_prompt="", max_steps=budget)]
    model_args, data_args, config = resolve({
        "model": str(base), "output_dir": str(root / "sft"), "max_steps": steps, "per_device_train_batch_size": 4,
        "learning_rate": 1e-2, "save_steps": 10_000, "logging_steps": 10, "seed": 0, "sample_format": "multi_turn",
        "system_prompt": "", "lr_scheduler_type": "constant", "disable_tqdm": True})
    return Path(train_sft(model_args, data_args, config, samples=samples).output_dir)


def format_reward(completions, **kwargs):
    from mira_env.actions import parse_action
    from mira_env.train.tools import last_answer_text

    return [float(parse_action(last_answer_text(c), 200).ok) for c in completions]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="GRPO steps per mode (the first is a warm-up)")
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--budget", type=int, default=3, help="edit budget T (max_tool_calling_iterations)")
    parser.add_argument("--sft_steps", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="JSON result file")
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl import GRPOTrainer

    from mira_env.shapes import make_shapes_env
    from mira_env.train.grpo import build_dataset, resolve, train_grpo
    from mira_env.train.model import generation_suppression

    torch.set_num_threads(args.threads)
    root = Path(tempfile.mkdtemp(prefix="bench_grpo_"))
    t = time.perf_counter()
    policy = sft_policy(root, args.budget, args.sft_steps)
    print(f"SFT'd tiny policy in {time.perf_counter() - t:.1f}s", flush=True)
    env = make_shapes_env(split="train", num_tasks=8, difficulty=1, resolution=56, max_steps=args.budget,
                          reward="oracle", noise=0.15)
    env = getattr(env, "unwrapped", env)
    rows = args.steps * args.batch // args.group
    dataset = build_dataset(env, num_rows=rows, system_prompt="")
    common = {"model": str(policy), "max_steps": args.steps, "num_generations": args.group,
              "per_device_train_batch_size": args.batch, "max_tool_calling_iterations": args.budget,
              "max_completion_length": 512, "temperature": 1.0, "learning_rate": 1e-4, "save_strategy": "no",
              "logging_steps": 1, "seed": 0, "system_prompt": "", "tasks": "shapes", "reward": "oracle",
              "disable_tqdm": True, "shuffle_dataset": False}
    result: dict = {"group": args.group, "batch": args.batch, "budget": args.budget, "threads": args.threads}

    # multi-turn: the tool environment
    timer = step_timer()
    model_args, env_args, config = resolve({**common, "output_dir": str(root / "multi")})
    torch.manual_seed(0)
    multi = train_grpo(model_args, env_args, config, env=env, dataset=dataset,
                       model=AutoModelForImageTextToText.from_pretrained(policy),
                       processor=AutoProcessor.from_pretrained(policy), callbacks=[timer])
    logs = [e for e in multi.trainer.state.log_history if "loss" in e]
    result["multi_turn_step_s"] = statistics.median(timer.times[1:] or timer.times)
    result["multi_turn_steps_s"] = timer.times
    result["multi_turn_tool_calls_per_rollout"] = statistics.mean(e.get("tools/call_frequency", 0.0) for e in logs)
    result["multi_turn_completion_tokens"] = statistics.mean(e["completions/mean_length"] for e in logs)

    # single-turn: same model, rows, group and batch; no tools, a format reward
    timer = step_timer()
    _, _, config = resolve({**common, "output_dir": str(root / "single")})
    processor = AutoProcessor.from_pretrained(policy)
    suppress = generation_suppression(processor)
    config.generation_kwargs = {**(config.generation_kwargs or {}), **suppress}
    torch.manual_seed(0)
    single = GRPOTrainer(model=AutoModelForImageTextToText.from_pretrained(policy), reward_funcs=[format_reward],
                         args=config, train_dataset=dataset.remove_columns(["task_id", "editor_seed"]),
                         processing_class=processor, callbacks=[timer])
    single.train()
    logs = [e for e in single.state.log_history if "loss" in e]
    result["single_turn_step_s"] = statistics.median(timer.times[1:] or timer.times)
    result["single_turn_steps_s"] = timer.times
    result["single_turn_completion_tokens"] = statistics.mean(e["completions/mean_length"] for e in logs)
    result["ratio_multi_over_single"] = result["multi_turn_step_s"] / result["single_turn_step_s"]
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
