"""``mira data build``: multi-turn editing sessions -> MIRA-Editing records (``docs/data.md``).

    mira data build --sessions MagicBrush/train.jsonl --out data/mb-train --orders ordered,shuffled
    mira data build --sessions sessions.jsonl --candidates runs/flux --reward judge.yaml --top-k 1 \\
        --paraphrase-base-url http://127.0.0.1:8000/v1 --paraphrase-model Qwen/Qwen2.5-7B-Instruct \\
        --eval magicbrush=MagicBrush/test --eval compbench=CompBench --out data/mira-editing

The pipeline is :func:`mira_env.data.build.build_records`; this module turns flags into its inputs:
sessions (:func:`mira_env.sessions.load_sessions`), candidates from ``mira run`` folders, the ranking
reward (:func:`mira_env.rewards.ranking.build_ranker`), the paraphraser and the leakage index.
It lives in ``train`` because it needs both the core and the rewards.
"""

from __future__ import annotations

import argparse
import json
import sys

from mira_env.errors import MiraError, TaskError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sessions", action="append", required=True, metavar="PATH",
                        help="sessions: a generic sessions .jsonl, MagicBrush turn rows (.jsonl/.json), a MagicBrush "
                             "JSON release folder (edit_sessions.json) or its hub parquet (repeatable)")
    parser.add_argument("--split", default=None, help="split of a MagicBrush release / parquet (train, dev, test)")
    parser.add_argument("--out", required=True, help="output folder (records.jsonl, images/, build_summary.json)")
    parser.add_argument("--orders", default="ordered",
                        help="complex-instruction orders, one record each: ordered, shuffled or ordered,shuffled")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shuffled orders (default 0)")
    parser.add_argument("--candidates", action="append", default=[], metavar="RUN_DIR",
                        help="a `mira run` folder whose episodes (task id = session id) are candidate trajectories")
    parser.add_argument("--reward", default=None,
                        help="rank candidates with this reward: a reward YAML file or 'term[:weight],...' "
                             "(e.g. judge_overall); default: keep the session's own trajectory")
    parser.add_argument("--top-k", type=int, default=1, help="candidates kept per session (default 1)")
    parser.add_argument("--min-score", type=float, default=None, help="drop candidates scoring below this")
    parser.add_argument("--min-turns", type=int, default=1, help="drop sessions with fewer turns (default 1)")
    parser.add_argument("--max-turns", type=int, default=None, help="drop sessions with more turns")
    parser.add_argument("--paraphrase-base-url", default=None, help="OpenAI-compatible endpoint for paraphrases")
    parser.add_argument("--paraphrase-model", default=None, help="the endpoint's model name")
    parser.add_argument("--paraphrases", type=int, default=2, help="paraphrases per complex instruction (default 2)")
    parser.add_argument("--paraphrase-seed", type=int, default=0, help="sampling seed sent to the endpoint")
    parser.add_argument("--paraphrase-temperature", type=float, default=0.7, help="sampling temperature")
    parser.add_argument("--paraphrase-cache", default=None,
                        help="JSONL cache of answers (default: <out>/paraphrases.jsonl)")
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY",
                        help="environment variable holding the paraphrase endpoint's key (unset: no key)")
    parser.add_argument("--eval", action="append", default=[], metavar="NAME=PATH",
                        help="evaluation set to check for leakage: magicbrush=PATH, compbench=PATH, gedit=PATH, "
                             "imgedit=FILE, or tasks=PATH (any task file / folder); repeatable")
    parser.add_argument("--on-leak", choices=("drop", "error"), default="drop",
                        help="a session matching an evaluation task: drop it (default) or stop")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _eval_tasks(specs: list[str]) -> list:
    from mira_env.tasks import resolve_tasks
    from mira_env.tasks.benchmarks import BENCHMARKS, load_benchmark

    tasks = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not path:
            raise TaskError(f"--eval {spec!r}: expected NAME=PATH with NAME one of {sorted(BENCHMARKS) + ['tasks']}")
        source = resolve_tasks(path) if name == "tasks" else load_benchmark(name, path)
        tasks.extend(source[i] for i in range(len(source)))
    return tasks


def main(args: argparse.Namespace) -> int:
    from mira_env.data.build import BuildConfig, build_records
    from mira_env.data.leakage import LeakageIndex
    from mira_env.data.paraphrase import ParaphraseConfig, Paraphraser
    from mira_env.sessions import attach_episode_candidates, load_sessions

    try:
        sessions = [s for spec in args.sessions for s in load_sessions(spec, split=args.split)]
        ids = [s.id for s in sessions]
        if len(set(ids)) != len(ids):
            repeated = sorted({i for i in ids if ids.count(i) > 1})[:5]
            raise TaskError(f"session ids repeat across --sessions files: {repeated}; give each source unique ids")
        for run_dir in args.candidates:
            counts = attach_episode_candidates(sessions, run_dir)
            print(f"candidates from {run_dir}: {counts}")
        ranker = None
        if args.reward:
            from mira_env.rewards.ranking import build_ranker

            ranker = build_ranker(args.reward)
        paraphraser, settings = None, {}
        if args.paraphrase_base_url or args.paraphrase_model:
            paraphraser = Paraphraser(ParaphraseConfig(
                base_url=args.paraphrase_base_url, model=args.paraphrase_model, count=args.paraphrases,
                temperature=args.paraphrase_temperature, seed=args.paraphrase_seed, api_key_env=args.api_key_env,
                cache_path=args.paraphrase_cache or f"{args.out}/paraphrases.jsonl"))
            settings["paraphrase"] = {"model": args.paraphrase_model, "count": args.paraphrases,
                                      "seed": args.paraphrase_seed, "temperature": args.paraphrase_temperature}
        leakage = LeakageIndex.from_tasks(_eval_tasks(args.eval)) if args.eval else None
        config = BuildConfig(out=args.out, orders=args.orders, seed=args.seed, top_k=args.top_k,
                             min_score=args.min_score, min_turns=args.min_turns, max_turns=args.max_turns,
                             on_leak=args.on_leak, progress=not args.no_progress)
        summary = build_records(sessions, config, ranker=ranker, paraphraser=paraphraser, leakage=leakage,
                                settings=settings)
    except MiraError as exc:
        print(f"mira data build: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if "paraphraser" in locals() and paraphraser is not None:
            paraphraser.close()
    print(json.dumps(summary.to_json(), indent=1))
    print(f"records: {args.out}/records.jsonl")
    return 0
