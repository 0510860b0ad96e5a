"""Editor service throughput and overhead: ratios measured in ONE run on this machine.

(a) Editor wall time per GRPO step, through ``mira serve editor`` (Ray Serve) with R = 1, 2, 4 replicas,
    for a latency-model editor that sleeps ``a + b * n`` seconds per call of n images (sleeping, so
    replicas overlap even on a 2-core machine, as GPUs would):

    - public figures (DESIGN.md section 4): Qwen-Image-Edit at 1024^2, 50 steps, one H200: ~17.8 s per
      edit; batching 4 images at 1024^2 saves 4-11% per image (midpoint 7.5%). Solving
      a + b = 17.8 and (a + 4b) / 4 = 17.8 * (1 - 0.075) gives a = 1.78 s, b = 16.02 s per image;
    - scaled down by ``--scale`` (default 1/200: a = 8.9 ms, b = 80 ms) to run in minutes on a CPU.

    One GRPO step = P prompts x G rollouts x T turns of edits (default 8 x 8 x 3 = 192 edits). Turn 1: the G
    rollouts of a group share I0 and the editor seeds, and the policy proposes ``--distinct_first``
    different instructions per group (default 3 of 8); later turns are all distinct (images differ).
    Modes:
    - sequential: one ``edit`` call per rollout per turn (TRL 1.16's tool loop today);
    - batched: one call per turn for the whole batch (BatchedToolGRPOTrainer), which RemoteEditor splits
      into R concurrent chunks;
    - batched + dedup: the same through DedupEditor (identical first-turn edits run once).
    Reported: speedups over sequential and the scaling efficiency speedup(R) / R of the batched modes
    against R = 1 (target >= 0.8 for R <= 4).

(b) Service overhead per request: the same identity editor in process vs through the service (one
    photo-like image per request, encoded both ways, HTTP, Ray Serve proxy and batching), at 512^2 and
    1024^2 (64^2 isolates the per-request cost of HTTP + Serve), for the JSON body (base64 images, API 1.1)
    and the binary body (API 1.2), each with raw RGB and PNG images; reported in ms and as a share of a 2 s
    edit (target < 5%) and of a 17.8 s Qwen-Image-Edit edit.

    python bench/bench_editor_service.py [--scale 0.005] [--prompts 8] [--group 8] [--turns 3] \
        [--replicas 1,2,4] [--out docs/results/bench_editor_service.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from mira_env.editors.base import EditorInfo, check_batch

QWEN_EDIT_S = 17.8  # s per 1024^2 edit, one H200 (public figure)
BATCH4_SAVING = 0.075  # midpoint of the 4-11% per-image saving of a batch of 4 at 1024^2
B_PER_IMAGE = QWEN_EDIT_S * (4 * (1 - BATCH4_SAVING) - 1) / 3
A_PER_CALL = QWEN_EDIT_S - B_PER_IMAGE


class LatencyModelEditor:
    """Sleeps ``a + b * len(batch)`` seconds, then returns the images unchanged (a deterministic editor)."""

    def __init__(self, a_s: float, b_s: float) -> None:
        self.a_s, self.b_s = float(a_s), float(b_s)
        self.info = EditorInfo(name="latency-model", extras={"a_s": self.a_s, "b_s": self.b_s})
        self.calls = 0

    def edit(self, images, instructions, seeds):
        check_batch(images, instructions, seeds)
        self.calls += 1
        time.sleep(self.a_s + self.b_s * len(images))
        return [image.copy() for image in images]


def latency_model(scale: float = 1.0) -> "LatencyModelEditor":
    """The bench editor (``--editor bench.bench_editor_service:latency_model``, ``editor_kwargs`` ``{"scale": ...}``)."""
    return LatencyModelEditor(A_PER_CALL * scale, B_PER_IMAGE * scale)


def step_workload(prompts: int, group: int, turns: int, distinct_first: int, size: int = 64):
    """The edits of one GRPO step, per turn: lists of (image, instruction, seed)."""
    rng = np.random.default_rng(0)
    sources = [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(prompts)]
    work = []
    for turn in range(turns):
        items = []
        for p, source in enumerate(sources):
            for g in range(group):
                if turn == 0:
                    items.append((source, f"first edit {g % distinct_first} of task {p}", 1000 + p))
                else:
                    image = source.copy()
                    image.putpixel((g % size, turn), (g, turn, p))  # the rollouts' images differ after turn 1
                    items.append((image, f"edit {turn} of rollout {g} of task {p}", 1000 + p + turn))
        work.append(items)
    return work


def run_step(editor, work, mode: str) -> tuple[float, list[float]]:
    """Editor wall time of one step in ``mode`` (sequential / batched / dedup): total and per turn."""
    from mira_env.editors.cache import DedupEditor

    runner = DedupEditor(editor) if mode == "dedup" else editor
    turns = []
    for items in work:
        start = time.perf_counter()
        if mode == "sequential":
            for image, text, seed in items:
                runner.edit([image], [text], [seed])
        else:
            runner.edit([i for i, _, _ in items], [t for _, t, _ in items], [s for _, _, s in items])
        turns.append(time.perf_counter() - start)
    return sum(turns), turns


def ideal_step_s(work, mode: str, replicas: int, max_batch: int, a_s: float, b_s: float) -> float:
    """The latency model's own time for a step with perfect balance and no service cost: per turn, each replica
    runs ceil(items / R) of the turn's (distinct, for dedup) edits in ceil(n / max_batch) calls."""
    from mira_env.editors.cache import edit_key

    total = 0.0
    for items in work:
        count = len({edit_key(i, t, s) for i, t, s in items}) if mode == "dedup" else len(items)
        per_replica = math.ceil(count / replicas)
        total += a_s * math.ceil(per_replica / max_batch) + b_s * per_replica
    return total


def photo_like(size: int) -> Image.Image:
    """A smooth gradient with mild noise: compresses like a photograph, not like a flat synthetic image."""
    x = np.linspace(0, 255, size, dtype=np.float32)
    base = np.stack(np.broadcast_arrays(x[None, :], x[:, None], 128 + 0 * x[None, :]), -1)
    noise = np.random.default_rng(size).normal(0, 8, base.shape)
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


#: (b)'s client settings: body format (JSON with base64 images = API <= 1.1; binary = 1.2) x image encoding
OVERHEAD_MODES = {"json_raw": ("json", "raw"), "json_png": ("json", "png"), "binary_raw": ("binary", "raw"),
                  "binary_png": ("binary", "png")}


def measure_overhead(url: str, sizes=(64, 512, 1024), repeats: int = 15) -> dict:
    from mira_env.editors import IdentityEditor
    from mira_env.editors.remote import RemoteEditor

    local = IdentityEditor()
    remotes = {name: RemoteEditor(url, concurrency=1, body_format=body, image_encoding=encoding)
               for name, (body, encoding) in OVERHEAD_MODES.items()}
    out = {}
    for size in sizes:
        image = photo_like(size)
        timings: dict[str, list[float]] = {"in_process": [], **{name: [] for name in remotes}}
        for _ in range(repeats):
            for name, editor in (("in_process", local), *remotes.items()):
                start = time.perf_counter()
                editor.edit([image], ["identity"], [0])
                timings[name].append(time.perf_counter() - start)
        local_s = statistics.median(timings["in_process"])
        row = {"in_process_ms": 1000 * local_s}
        for name in remotes:
            overhead = statistics.median(timings[name]) - local_s
            row[name] = {"service_ms": 1000 * statistics.median(timings[name]), "overhead_ms": 1000 * overhead,
                         "share_of_2s_edit": overhead / 2.0, "share_of_17.8s_edit": overhead / QWEN_EDIT_S}
        out[f"{size}x{size}"] = row
    return out


def wait_running(serve, name: str, timeout_s: float = 300.0) -> None:
    """Wait until every replica of application ``name`` is up (``serve.status()`` says RUNNING)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        app = serve.status().applications.get(name)
        if app is not None and str(app.status).endswith("RUNNING"):
            return
        time.sleep(0.5)
    raise TimeoutError(f"Serve application {name!r} is not RUNNING after {timeout_s:.0f}s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1 / 200, help="time scale of the latency model")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--distinct_first", type=int, default=3)
    parser.add_argument("--replicas", default="1,2,4")
    parser.add_argument("--max_batch", type=int, default=16)
    parser.add_argument("--port", type=int, default=8431)
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args()
    root = str(Path(__file__).resolve().parents[1])  # the replicas import this module by spec
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)

    import ray
    from ray import serve

    from mira_env.editors.remote import RemoteEditor
    from mira_env.serve import ServeConfig
    from mira_env.serve.ray_app import editor_app
    from mira_env.serve.runner import start_ray_app, wait_until_healthy

    work = step_workload(args.prompts, args.group, args.turns, args.distinct_first)
    edits = sum(len(items) for items in work)
    replicas = [int(r) for r in args.replicas.split(",")]
    results: dict = {"latency_model": {"a_s": A_PER_CALL * args.scale, "b_s": B_PER_IMAGE * args.scale,
                                       "scale": args.scale, "source": "Qwen-Image-Edit 1024^2 17.8 s/edit on one "
                                       "H200; 4-image batch saves 4-11% per image (7.5% used)"},
                     "step": {"prompts": args.prompts, "group": args.group, "turns": args.turns, "edits": edits,
                              "distinct_first_turn_instructions_per_group": args.distinct_first},
                     "replicas": {}}
    base = ServeConfig(editor="bench.bench_editor_service:latency_model", editor_kwargs={"scale": args.scale},
                       backend="ray", replicas=1, cpus_per_replica=0.25, max_batch=args.max_batch,
                       batch_wait_ms=10.0, max_items=256, port=args.port,
                       # = the client's chunks per replica: the router must spread them evenly
                       max_ongoing_requests=4)
    running = None
    try:
        for count in replicas:
            config = ServeConfig(**{**base.__dict__, "replicas": count})
            if running is None:
                running = start_ray_app(editor_app(config), config)
            else:  # redeploy the application with R replicas on the same Serve instance
                serve.run(editor_app(config), name=config.app_name, route_prefix="/")
                wait_running(serve, config.app_name)
                wait_until_healthy(running.url)
            # chunks of max_batch / 4 items, 4 per replica in flight: the Serve router balances many small
            # requests better than R large ones, and each replica's @serve.batch merges them again
            editor = RemoteEditor(running.url, concurrency=4 * count, chunk_size=max(1, args.max_batch // 4))
            row = {}
            for mode in ("sequential", "batched", "dedup"):
                if mode == "sequential" and count > 1:
                    continue  # a sequential client keeps one replica busy at a time: R does not change it
                row[f"{mode}_s"], row[f"{mode}_turns_s"] = run_step(editor, work, mode)
                if mode != "sequential":
                    ideal = ideal_step_s(work, mode, count, args.max_batch, A_PER_CALL * args.scale,
                                         B_PER_IMAGE * args.scale)
                    row[f"{mode}_ideal_s"] = ideal
                    # what the service adds per tool iteration beyond the model's own time (HTTP, Serve, imbalance)
                    row[f"{mode}_overhead_per_turn_s"] = (row[f"{mode}_s"] - ideal) / len(work)
            results["replicas"][str(count)] = row
            print(f"R={count}: {row}", flush=True)
        sequential = results["replicas"][str(replicas[0])]["sequential_s"]
        one = results["replicas"][str(replicas[0])]
        for count in replicas:
            row = results["replicas"][str(count)]
            row["speedup_batched"] = sequential / row["batched_s"]
            row["speedup_batched_dedup"] = sequential / row["dedup_s"]
            row["scaling_efficiency_batched"] = one["batched_s"] / row["batched_s"] / (count / replicas[0])
            row["scaling_efficiency_dedup"] = one["dedup_s"] / row["dedup_s"] / (count / replicas[0])
            for mode in ("batched", "dedup"):  # the same ratio for the ideal times: the workload's own limit
                row[f"ideal_scaling_efficiency_{mode}"] = (one[f"{mode}_ideal_s"] / row[f"{mode}_ideal_s"]
                                                           / (count / replicas[0]))
        # (b) overhead: an identity editor, one replica
        config = ServeConfig(**{**base.__dict__, "editor": "identity", "editor_kwargs": {}, "replicas": 1})
        serve.run(editor_app(config), name=config.app_name, route_prefix="/")
        wait_running(serve, config.app_name)
        wait_until_healthy(running.url)
        results["overhead"] = measure_overhead(running.url)
        # the same through the threaded backend (one process, no Serve proxy between the client and the editor)
        from mira_env.serve import start_editor_service

        with start_editor_service(ServeConfig(editor="identity", backend="threaded", port=0)) as threaded:
            results["overhead_threaded_backend"] = measure_overhead(threaded.url)
    finally:
        if running is not None:
            running.stop()
        if ray.is_initialized():
            ray.shutdown()
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
