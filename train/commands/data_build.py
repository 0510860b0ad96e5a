"""``mira data build``: multi-turn editing sessions -> MIRA-Editing records (``docs/data.md``).

    mira data build --sessions MagicBrush/train.jsonl --out data/mb-train --orders ordered,shuffled
    mira data build --sessions sessions.jsonl --candidates runs/flux --reward judge.yaml --top_k 1 \\
        --paraphrase_base_url http://127.0.0.1:8000/v1 --paraphrase_model Qwen/Qwen2.5-7B-Instruct \\
        --eval magicbrush=MagicBrush/test compbench=CompBench --out data/mira-editing

The pipeline is :func:`mira_env.data.build.build_records`; this module turns flags into its inputs:
sessions (:func:`mira_env.sessions.load_sessions`), candidates from ``mira run`` folders, the ranking
reward (:func:`mira_env.rewards.ranking.build_ranker`), the paraphraser and the leakage index.
It lives in ``train`` because it needs both the core and the rewards.
"""

from __future__ import annotations

import argparse
import json
import sys

from dataclasses import dataclass, field

from mira_env.errors import MiraError, TaskError
from mira_env.train.config import OldFlag, add_command_arguments, dash_flags, resolve_config


@dataclass
class DataBuildArguments:
    """What ``mira data build`` reads, ranks, paraphrases and checks."""

    sessions: list[str] = field(default_factory=list, metadata={
        "help": "Sessions (required): a generic sessions .jsonl, MagicBrush turn rows (.jsonl/.json), a MagicBrush "
                "JSON release folder (edit_sessions.json) or its hub parquet; several allowed."})
    split: str | None = field(default=None, metadata={"help": "Split of a MagicBrush release / parquet (train, dev, test)."})
    out: str | None = field(default=None, metadata={
        "help": "Output folder (required): records.jsonl, images/, build_summary.json."})
    orders: str = field(default="ordered", metadata={
        "help": "Complex-instruction orders, one record each: ordered, shuffled or ordered,shuffled."})
    seed: int = field(default=0, metadata={"help": "Seed of the shuffled orders."})
    candidates: list[str] = field(default_factory=list, metadata={
        "help": "`mira run` folders whose episodes (task id = session id) are candidate trajectories."})
    reward: str | None = field(default=None, metadata={
        "help": "Rank candidates with this reward: a reward YAML file or 'term[:weight],...' (e.g. judge_overall); "
                "default: keep the session's own trajectory."})
    top_k: int = field(default=1, metadata={"help": "Candidates kept per session."})
    min_score: float | None = field(default=None, metadata={"help": "Drop candidates scoring below this."})
    min_turns: int = field(default=1, metadata={"help": "Drop sessions with fewer turns."})
    max_turns: int | None = field(default=None, metadata={"help": "Drop sessions with more turns."})
    paraphrase_base_url: str | None = field(default=None, metadata={"help": "OpenAI-compatible endpoint for paraphrases."})
    paraphrase_model: str | None = field(default=None, metadata={"help": "The paraphrase endpoint's model name."})
    paraphrases: int = field(default=2, metadata={"help": "Paraphrases per complex instruction."})
    paraphrase_seed: int = field(default=0, metadata={"help": "Sampling seed sent to the endpoint."})
    paraphrase_temperature: float = field(default=0.7, metadata={"help": "Sampling temperature."})
    paraphrase_cache: str | None = field(default=None, metadata={
        "help": "JSONL cache of answers (default: <out>/paraphrases.jsonl)."})
    api_key_env: str = field(default="OPENAI_API_KEY", metadata={
        "help": "Environment variable holding the paraphrase endpoint's key (unset: no key)."})
    eval: list[str] = field(default_factory=list, metadata={
        "help": "Evaluation sets to check for leakage: magicbrush=PATH, compbench=PATH, gedit=PATH, imgedit=FILE, or "
                "tasks=PATH (any task file / folder)."})
    on_leak: str = field(default="drop", metadata={
        "help": "A session matching an evaluation task: drop it or stop with an error.", "choices": ("drop", "error")})
    progress: bool = field(default=True, metadata={"help": "Show a progress bar."})

    def __post_init__(self) -> None:
        if not self.sessions:
            raise TaskError("no sessions: pass --sessions <file or folder> (one or more)")
        if not self.out:
            raise TaskError("no output folder: pass --out <folder>")


OLD_FLAGS = [*dash_flags([DataBuildArguments], "top_k", "min_score", "min_turns", "max_turns", "paraphrase_base_url",
                         "paraphrase_model", "paraphrase_seed", "paraphrase_temperature", "paraphrase_cache",
                         "api_key_env", "on_leak"),
             OldFlag("--no-progress", "progress", False)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_command_arguments(parser, [(DataBuildArguments, "data build")], OLD_FLAGS)


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

    args = resolve_config([DataBuildArguments], args)[0]
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
                             on_leak=args.on_leak, progress=args.progress)
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
