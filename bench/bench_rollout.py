"""Episodes per second of a group rollout (G=8): one BatchedEditEnv of 8 vs one environment at a time.

Both modes play the SAME episodes (the same tasks, group seeds, agent and editor) through
:class:`mira_env.agents.rollout.RolloutEngine`; only the batch differs:

- batched: ``BatchedEditEnv(8)``, one group of 8 per task: every turn is ONE ``VLMAgent.act`` (one
  ``generate`` over all running episodes) and ONE editor call (one diffusers pipeline call);
- one at a time: ``BatchedEditEnv(1)``, the 8 members of a group played one after another.

Agent: a tiny random Qwen2.5-VL (:mod:`mira_env.tiny.vlm`) run by :class:`mira_env.agents.vlm.VLMAgent`.
Editor: a tiny random InstructPix2Pix pipeline (:mod:`mira_env.tiny.pipelines`) run by
:class:`mira_env.editors.diffusers_editor.DiffusersEditor`. A random VLM's answers are almost never
well formed, so the agent would never edit; the bench wrapper keeps the VLM's generate call (its cost
is measured) and replaces each malformed answer by a fixed atomic instruction until the step budget,
so the editor path runs every turn. Numbers are ratios measured in one run on this machine.

    python bench/bench_rollout.py [--tasks 2] [--group-size 8] [--max-steps 3] [--editor-steps 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from mira_env.agents.rollout import GroupJob, RolloutConfig, RolloutEngine, group_seed
from mira_env import Task
from mira_env.vector import BatchedEditEnv


class EditingVLM:
    """A VLMAgent whose malformed answers become ``fallback`` (the step budget then ends the episode)."""

    def __init__(self, vlm, fallback: str = "make the background blue") -> None:
        self.vlm = vlm
        self.fallback = fallback
        self.name = vlm.name

    def act(self, observations, infos=None):
        actions = self.vlm.act(observations, infos)
        self.last_outputs = self.vlm.last_outputs
        return [a if a else self.fallback for a in actions]


def make_tasks(count: int, size: int) -> list[Task]:
    rng = np.random.default_rng(0)
    return [Task(id=f"bench-{i}", instruction="make the background blue and add a red circle",
                 image=Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)))
            for i in range(count)]


def play(agent, editor, tasks, num_envs: int, group_size: int, max_steps: int, size: int, sequential: bool) -> tuple[float, int, int]:
    venv = BatchedEditEnv(num_envs, editor=editor, tasks=tasks, height=size, width=size, max_steps=max_steps)
    config = RolloutConfig(group_size=1 if sequential else group_size, progress=False, images="none")
    jobs = []
    for index, task in enumerate(tasks):
        seed = group_seed(0, index, 0)
        if sequential:
            jobs += [GroupJob(task, index, 0, seed, (member,)) for member in range(group_size)]
        else:
            jobs.append(GroupJob(task, index, 0, seed, tuple(range(group_size))))
    engine = RolloutEngine(venv, agent, config)
    start = time.perf_counter()
    records = engine.run(jobs)
    elapsed = time.perf_counter() - start
    venv.close()
    return len(records) / elapsed, engine.act_calls, len(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--max-steps", type=int, default=3)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--editor-steps", type=int, default=2, help="denoising steps per edit")
    parser.add_argument("--repeats", type=int, default=2, help="alternating repeats of each mode; the best is kept")
    args = parser.parse_args()

    from tqdm.auto import tqdm

    from mira_env.agents.vlm import VLMAgent
    from mira_env.editors.diffusers_editor import DiffusersEditor
    from mira_env.tiny.pipelines import build_tiny_pipeline
    from mira_env.tiny.vlm import build_tiny_vlm

    root = Path(tempfile.gettempdir()) / "mira_bench_rollout"
    vlm_path = build_tiny_vlm("qwen2_5_vl", root / "vlm", seed=0)
    pipe_path = build_tiny_pipeline("instruct-pix2pix", root / "ip2p", seed=0)
    agent = EditingVLM(VLMAgent(str(vlm_path), device=args.device, max_new_tokens=16,
                                batch_size=args.group_size, do_sample=True, seed=0))
    editor = DiffusersEditor(str(pipe_path), device=args.device, num_inference_steps=args.editor_steps)
    tasks = make_tasks(args.tasks, args.size)
    play(agent, editor, tasks[:1], 1, 1, 1, args.size, True)  # warm-up: first generate / pipeline call

    results: dict[str, list[float]] = {"batched": [], "sequential": []}
    calls: dict[str, int] = {}
    with tqdm(total=2 * args.repeats, desc="bench rollouts", unit="mode") as bar:
        for _ in range(args.repeats):
            for mode in ("sequential", "batched"):
                sequential = mode == "sequential"
                rate, act_calls, episodes = play(agent, editor, tasks, 1 if sequential else args.group_size,
                                                 args.group_size, args.max_steps, args.size, sequential)
                results[mode].append(rate)
                calls[mode] = act_calls
                bar.update(1)
    best = {mode: max(rates) for mode, rates in results.items()}
    print(f"group rollout: {args.tasks} tasks x G={args.group_size}, {args.max_steps} steps per episode, "
          f"{args.size}x{args.size}, {args.editor_steps} denoising steps, device {args.device}, "
          f"{episodes} episodes per mode")
    for mode in ("sequential", "batched"):
        print(f"  {mode:<10} {best[mode]:7.2f} episodes/s  (act calls per run: {calls[mode]}; "
              f"all repeats: {', '.join(f'{r:.2f}' for r in results[mode])})")
    print(f"  batched / one-at-a-time: {best['batched'] / best['sequential']:.2f}x")


if __name__ == "__main__":
    main()
