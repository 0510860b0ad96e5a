"""Shapes-world benchmark: env steps per second and baseline success rates, measured in one run.

    python bench/bench_shapes.py                    # speed + success (500 test tasks)
    python bench/bench_shapes.py --part speed --profile
    python bench/bench_shapes.py --part success --episodes 500 --noise 0.15

Speed: episodes replay each task's hidden program then ``<STOP>`` (resets included), single process
through ``EditEnv`` and batched through ``BatchedEditEnv`` (one editor call per batch step). The
figures use this process's CPU time (``time.process_time``: a busy shared machine does not deflate
them); ``*_wall`` figures use wall-clock time. The breakdown separates ``EditEnv``'s own overhead (measured with a stub editor that returns a copy of
its input) from ``ShapesEditor``. Each figure is the median of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mira_env.agents.baselines import OneShotAgent, RandomAgent, ScriptedOracleAgent
from mira_env.agents.play import play_episodes, success_stats
from mira_env.shapes.env import make_shapes_env
from mira_env.shapes.noise import EditorNoise
from mira_env.vector import BatchedEditEnv


class StubEditor:
    """Returns a copy of each input: isolates EditEnv's overhead."""

    def __init__(self, info):
        self.info = info

    def edit(self, images, instructions, seeds):
        return [image.copy() for image in images]


CLOCK = time.process_time


def single_process(env, tasks, episodes: int) -> float:
    steps, start = 0, CLOCK()
    for index in range(episodes):
        task = tasks[index % len(tasks)]
        env.reset(seed=index, options={"task": task})
        for text in task.atomic_instructions:
            env.step(text)
        env.step("<STOP>")
        steps += len(task.atomic_instructions) + 1
    return steps / (CLOCK() - start)


def batched(vec: BatchedEditEnv, tasks, groups: int) -> float:
    steps, start = 0, CLOCK()
    for index in range(groups):
        task = tasks[index % len(tasks)]
        vec.reset_group(task=task, seed=index)
        active = list(range(vec.num_envs))
        for text in list(task.atomic_instructions) + ["<STOP>"]:
            vec.step_active(active, [text] * len(active))
            steps += len(active)
    return steps / (CLOCK() - start)


def median(fn, repeats: int) -> float:
    return statistics.median(fn() for _ in range(repeats))


def speed(args) -> dict:
    env = make_shapes_env(split="train", num_tasks=200, resolution=args.resolution)
    tasks = [env.tasks[i] for i in range(200)]
    single_process(env, tasks, 200)  # warm the render cache and the parse cache
    out = {"resolution": args.resolution}
    out["single_steps_per_s"] = median(lambda: single_process(env, tasks, args.episodes), args.repeats)
    editor = env.editor
    env.editor = StubEditor(editor.info)
    out["single_stub_editor_steps_per_s"] = median(lambda: single_process(env, tasks, args.episodes), args.repeats)
    env.editor = editor
    out["editenv_overhead_us_per_step"] = 1e6 / out["single_stub_editor_steps_per_s"]
    out["shapes_editor_us_per_step"] = 1e6 / out["single_steps_per_s"] - out["editenv_overhead_us_per_step"]
    vec = BatchedEditEnv(args.num_envs, env_fn=lambda: make_shapes_env(split="train", num_tasks=200,
                                                                      resolution=args.resolution))
    batched(vec, tasks, 20)
    out[f"batched_{args.num_envs}_env_steps_per_s"] = median(
        lambda: batched(vec, tasks, max(1, args.episodes // args.num_envs)), args.repeats)
    global CLOCK
    CLOCK = time.perf_counter
    out["single_steps_per_s_wall"] = median(lambda: single_process(env, tasks, args.episodes), args.repeats)
    CLOCK = time.process_time
    out["target_5000_met"] = out["single_steps_per_s"] >= 5000
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        single_process(env, tasks, args.episodes)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    return out


def success(args) -> dict:
    noise = EditorNoise(ignore=args.noise, wrong_object=args.noise, color_drift=args.noise,
                        position_drift=args.noise)
    runs = {
        "oracle, no noise": (None, ScriptedOracleAgent()),
        "one-shot, no noise": (None, OneShotAgent()),
        "random, no noise": (None, RandomAgent(seed=0)),
        "oracle open loop, noise": (noise, ScriptedOracleAgent(replan=False)),
        "oracle re-planning, noise": (noise, ScriptedOracleAgent()),
        "one-shot, noise": (noise, OneShotAgent()),
    }
    out = {"episodes": args.tasks, "noise": noise.to_dict()}
    for name, (run_noise, agent) in runs.items():
        env = make_shapes_env(split="test", num_tasks=args.tasks, noise=run_noise)
        start = time.perf_counter()
        records, _ = play_episodes(env, agent, seed=0, keep_images=False)  # through the rollout engine
        stats = success_stats(records, env.tasks).as_dict()
        stats["seconds"] = round(time.perf_counter() - start, 2)
        out[name] = stats
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("speed", "success", "all"), default="all")
    parser.add_argument("--episodes", type=int, default=1000, help="Episodes per speed measurement.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--tasks", type=int, default=500, help="Test tasks for the success figures.")
    parser.add_argument("--noise", type=float, default=0.15, help="Probability of each noise kind.")
    parser.add_argument("--profile", action="store_true", help="cProfile one single-process run.")
    args = parser.parse_args()
    report = {}
    if args.part in ("speed", "all"):
        report["speed"] = speed(args)
    if args.part in ("success", "all"):
        report["success"] = success(args)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
