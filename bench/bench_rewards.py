"""Throughput of the model-backed reward terms: one batched call of 16 items vs 16 calls of one.

Prints, per term, items/s both ways and their ratio, measured in ONE run on the tiny offline models
(CPU unless CUDA is available). Absolute numbers say nothing about real models; the ratio says how
much batching buys.

    python bench/bench_rewards.py [--batch 16] [--repeats 3] [--cache /tmp/mira_tiny/bench]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from mira_env.reward_api import RewardInput
from mira_env.tasks.task import Task


def _items(n: int, size: int) -> list[RewardInput]:
    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        source = Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
        edited = Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
        instruction = f"make object {i} red"
        items.append(RewardInput(source, edited, instruction, [instruction], Task(id=f"b{i}", instruction=instruction,
                                                                                  image=source)))
    return items


def _time(fn, repeats: int) -> float:
    fn()  # warm-up (model load, first-call overheads)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--cache", default=None, help="tiny model folder (default $MIRA_TINY_CACHE/bench)")
    args = parser.parse_args()

    from mira_env.tiny.reward_models import build_tiny_clip, build_tiny_lpips_home, default_root
    from mira_env.tiny.vlm import build_tiny_vlm, suppress_token_ids
    from mira_env.rewards.clip import ClipImage, ClipTextImage
    from mira_env.rewards.judge import JudgeCache, JudgeTerm, VLMJudge
    from mira_env.rewards.judge.transformers_backend import TransformersJudge
    from mira_env.rewards.lpips_term import LpipsDistance

    cache = Path(args.cache) if args.cache else default_root() / "bench"
    name, checkpoint = build_tiny_clip(cache / "clip")
    home = str(build_tiny_lpips_home(cache / "lpips"))
    vlm = str(build_tiny_vlm("qwen2_5_vl", cache / "vlm"))
    from transformers import AutoProcessor

    suppress = suppress_token_ids(AutoProcessor.from_pretrained(vlm))

    def judge_term():
        # a fresh cache per call: the benchmark measures model throughput, not cache hits
        backend = TransformersJudge(vlm, max_new_tokens=8, batch_size=args.batch,
                                    generate_kwargs={"suppress_tokens": suppress})
        return JudgeTerm(VLMJudge(backend, JudgeCache()), "sc")

    terms = {
        "clip_t": lambda: ClipTextImage(name, checkpoint),
        "clip_i": lambda: ClipImage(name, checkpoint),
        "lpips (squeeze)": lambda: LpipsDistance("squeeze", torch_home=home),
        "judge_sc (tiny Qwen2.5-VL)": judge_term,
    }
    items = _items(args.batch, args.size)
    print(f"batch={args.batch}, image {args.size}x{args.size}, best of {args.repeats}")
    print(f"{'term':28s} {'batched items/s':>16s} {'single items/s':>15s} {'ratio':>7s}")
    for label, make in tqdm(terms.items(), desc="terms", leave=False):
        term = make()
        fresh = label.startswith("judge")
        batched = _time(lambda make=make, fresh=fresh, term=term: (make() if fresh else term).score(items), args.repeats)
        single = _time(lambda make=make, fresh=fresh, term=term: [(make() if fresh else term).score([item]) for item in items], args.repeats)
        print(f"{label:28s} {len(items) / batched:16.1f} {len(items) / single:15.1f} {single / batched:7.2f}")


if __name__ == "__main__":
    main()
