"""How much time EditEnv adds on top of the diffusion editor it drives, measured as ratios in one run.

Three layers on the SAME inputs (one 64x64 image, one prompt, the same steps and seed):

1. the bare diffusers pipeline call ``pipe(image=[I], prompt=[u], generator=[g], ...)``;
2. ``DiffusersEditor.edit([I], [u], [seed])`` (validation, working size, generators, RGB outputs);
3. ``EditEnv.step(u)`` right after ``reset(options={"task": task, "editor_seed": S})`` (the step's
   editor seed is ``step_seed(S, 0)``, the same seed the bare call gets).

The three are interleaved rep by rep (rotating order) so load drifts hit all of them alike; the
overhead is the median of the per-rep paired differences over the median bare time. A second table
gives the per-step cost of EditEnv itself with the no-op ``IdentityEditor`` in microseconds.

Usage: ``python bench/bench_env_overhead.py [--reps 40] [--steps 2] [--size 64] [--threads 1]``.
Pass ``--model PATH_OR_HUB_ID`` to time a real checkpoint instead of the tiny random InstructPix2Pix.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
from PIL import Image


def gradient(size: int) -> Image.Image:
    x = np.linspace(0, 255, size)[None, :, None]
    y = np.linspace(0, 255, size)[:, None, None]
    array = np.concatenate([np.broadcast_to(x, (size, size, 1)), np.broadcast_to(y, (size, size, 1)),
                            np.full((size, size, 1), 90.0)], axis=2)
    return Image.fromarray(array.astype(np.uint8), "RGB")


def time_diffusion(args: argparse.Namespace) -> list[tuple[str, float, float]]:
    import torch

    from mira_env import EditEnv, Task, step_seed
    from mira_env.editors.diffusers_editor import DiffusersEditor

    model = args.model
    if model is None:
        from mira_env.tiny.pipelines import build_tiny_pipeline

        model = str(build_tiny_pipeline("instruct-pix2pix", tempfile.mkdtemp(prefix="tiny-ip2p-")))
    editor = DiffusersEditor(model, num_inference_steps=args.steps)
    source = gradient(args.size)
    task = Task(id="bench", instruction="make the sky red", image=source)
    env = EditEnv(editor=editor, tasks=[task], height=args.size, width=args.size, max_steps=4)
    prompt, episode_seed = "make the sky red", 1234
    seed = step_seed(episode_seed, 0)
    pipe = editor.pipeline
    fixed = editor.call_kwargs_for(source.size, [prompt], [seed])

    def bare() -> float:
        kwargs = dict(fixed, image=[source],
                      generator=[torch.Generator(device=editor.generator_device()).manual_seed(seed)])
        start = time.perf_counter()
        pipe(**kwargs)
        return time.perf_counter() - start

    def wrapped() -> float:
        start = time.perf_counter()
        editor.edit([source], [prompt], [seed])
        return time.perf_counter() - start

    def stepped() -> float:
        env.reset(options={"task": task, "editor_seed": episode_seed})
        start = time.perf_counter()
        _, _, _, _, info = env.step(prompt)
        elapsed = time.perf_counter() - start
        assert info["editor_error"] is None, info["editor_error"]
        return elapsed

    # same inputs -> the same image on all three paths (checked once, outside the timings)
    kwargs = dict(fixed, image=[source],
                  generator=[torch.Generator(device=editor.generator_device()).manual_seed(seed)])
    reference = np.asarray(pipe(**kwargs).images[0])
    env.reset(options={"task": task, "editor_seed": episode_seed})
    env.step(prompt)
    assert np.array_equal(np.asarray(editor.edit([source], [prompt], [seed])[0]), reference)
    assert np.array_equal(np.asarray(env.current_image), reference)

    runners = [("bare pipeline call", bare), ("DiffusersEditor.edit", wrapped), ("EditEnv.step", stepped)]
    for _ in range(args.warmup):
        for _, run in runners:
            run()
    times: dict[str, list[float]] = {name: [] for name, _ in runners}
    for rep in range(args.reps):
        order = runners[rep % 3:] + runners[:rep % 3]
        for name, run in order:
            times[name].append(run())
    base = times["bare pipeline call"]
    base_median = statistics.median(base)
    rows = []
    for name, _ in runners:
        paired = [t - b for t, b in zip(times[name], base)]
        rows.append((name, statistics.median(times[name]) * 1e3, statistics.median(paired) / base_median * 100))
    return rows


def time_identity(args: argparse.Namespace) -> list[tuple[str, float]]:
    from mira_env import EditEnv, IdentityEditor, Task

    editor = IdentityEditor()
    source = gradient(args.size)
    task = Task(id="bench", instruction="make the sky red", image=source)
    env = EditEnv(editor=editor, tasks=[task], height=args.size, width=args.size, max_steps=100_000)
    env.reset(seed=0)
    images, prompts, seeds = [source], ["make the sky red"], [0]
    count = args.identity_steps
    for _ in range(100):
        env.step("make the sky red")
    start = time.perf_counter()
    for _ in range(count):
        env.step("make the sky red")
    per_step = (time.perf_counter() - start) / count
    start = time.perf_counter()
    for _ in range(count):
        editor.edit(images, prompts, seeds)
    per_edit = (time.perf_counter() - start) / count
    return [("EditEnv.step (IdentityEditor)", per_step * 1e6), ("IdentityEditor.edit alone", per_edit * 1e6),
            ("env overhead per step", (per_step - per_edit) * 1e6)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="pipeline path or hub id (default: tiny InstructPix2Pix)")
    parser.add_argument("--reps", type=int, default=40, help="interleaved repetitions per layer")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    parser.add_argument("--steps", type=int, default=2, help="num_inference_steps")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (also the observation side)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: leave as is)")
    parser.add_argument("--identity-steps", type=int, default=2000, help="steps timed with IdentityEditor")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    rows = time_diffusion(args)
    print(f"\nEditEnv overhead over the editor ({args.size}x{args.size}, {args.steps} steps, {args.reps} interleaved "
          f"reps, torch threads={torch.get_num_threads()})")
    print(f"{'layer':<24}{'median ms':>12}{'overhead vs bare':>20}")
    for name, median_ms, overhead in rows:
        print(f"{name:<24}{median_ms:>12.2f}{overhead:>19.2f}%")
    print(f"\nEditEnv per-step cost with IdentityEditor ({args.identity_steps} steps)")
    print(f"{'measure':<32}{'microseconds':>14}")
    for name, micros in time_identity(args):
        print(f"{name:<32}{micros:>14.1f}")


if __name__ == "__main__":
    main()
