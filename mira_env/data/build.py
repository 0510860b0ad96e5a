"""``mira data build``: multi-turn editing sessions -> MIRA-Editing records (:mod:`mira_env.records`).

Per session, in order:

1. **checks**: at least ``min_turns`` turns (and at most ``max_turns``); the source and every image of
   a candidate must load;
2. **deduplication**: a session whose source image and instructions equal an earlier one's (this build
   or the records already in the folder) is dropped as a duplicate;
3. **leakage**: with a :class:`~mira_env.data.leakage.LeakageIndex`, a session that matches an
   evaluation task is dropped (``on_leak="drop"``) or stops the build (``"error"``);
4. **candidates**: the session's own turn images (candidate ``reference``) and any others (a generic
   session file's ``candidates``, a ``mira run`` folder). With a ``ranker`` every candidate is scored in
   one call (the reward sees I0, the candidate's final image, C merged in order and the candidate's
   instructions) and the top ``top_k`` with a score (and ``>= min_score``) are kept; unscored ones are
   dropped with the reward's reason. Without a ranker only ``reference`` is kept;
5. **records**: for each kept candidate and each order in ``orders`` one record: C merged in order or
   shuffled (:mod:`mira_env.data.merge`; the trajectory keeps the session's order), optional
   paraphrases as ``variants`` (a failure is recorded in the record's metadata and the summary, never
   fatal), target = the session's last turn image. Images are copied into the output folder, so it is
   self-contained; record ids are ``<session>-<candidate>-<order>``.

The output folder holds ``records.jsonl`` + ``images/`` (loadable by ``mira train sft`` and
:func:`mira_env.records.read_records`), ``build_state.jsonl`` (one line per finished session: kept or
dropped and why), ``build_settings.json`` and ``build_summary.json`` (counts of what was kept and
dropped, by reason). **Resumable**: a rerun skips finished sessions, and removes the records of a
session that a kill interrupted before rebuilding it; a rerun with different settings raises.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

from PIL import Image

from mira_env.data.merge import ORDERS, merge, shuffled_order
from mira_env.data.state import STATE_FILE, append_state, read_state, repair_records, session_key  # noqa: F401 - STATE_FILE: public path kept
from mira_env.errors import ConfigError, TaskError, describe
from mira_env.records import EditingRecord, TrajectoryStep, record_to_json, write_records
from mira_env.sessions import REFERENCE, Candidate, EditingSession
from mira_env.validate import check_choice, check_int, check_ints

SETTINGS_FILE = "build_settings.json"
SUMMARY_FILE = "build_summary.json"
LEAK_POLICIES = ("drop", "error")


class BuildError(TaskError):
    """The build cannot go on: a leaking session under ``on_leak="error"``, settings that differ on resume."""


@dataclass
class RankItem:
    """One candidate trajectory of a session, as a reward sees it."""

    session: EditingSession
    candidate: Candidate
    instruction: str
    source: Image.Image
    images: list[Image.Image]

    @property
    def final(self) -> Image.Image:
        return self.images[-1] if self.images else self.source

    @property
    def instructions(self) -> list[str]:
        return [" ".join(step.instruction.split()) for step in self.candidate.steps]


class Ranker(Protocol):
    """Scores candidate trajectories: one ``(score, reason)`` per item, ``score=None`` = could not score."""

    name: str

    def score(self, items: Sequence[RankItem]) -> list[tuple[float | None, str | None]]: ...


@dataclass
class BuildConfig:
    """How sessions become records (see the module docstring)."""

    out: str = field(metadata={"help": "Output folder (records.jsonl, images/, build_summary.json)."})
    orders: tuple = field(default=("ordered",), metadata={
        "help": "Complex-instruction orders, one record each: 'ordered', 'shuffled' or both."})
    seed: int = field(default=0, metadata={"help": "Seed of the shuffled orders (per session: sha256(seed, id))."})
    top_k: int = field(default=1, metadata={"help": "Candidate trajectories kept per session (best first)."})
    min_score: float | None = field(default=None, metadata={
        "help": "Drop candidates scoring below this (needs a ranker); None = keep the top_k whatever they score."})
    min_turns: int = field(default=1, metadata={"help": "Drop sessions with fewer turns."})
    max_turns: int | None = field(default=None, metadata={"help": "Drop sessions with more turns (None = no limit)."})
    on_leak: str = field(default="drop", metadata={
        "help": "A session matching an evaluation task: 'drop' it (listed in the summary) or 'error'."})
    progress: bool = field(default=True, metadata={"help": "Show a tqdm progress bar over sessions."})

    def __post_init__(self) -> None:
        if isinstance(self.orders, str):
            self.orders = tuple(o.strip() for o in self.orders.split(",") if o.strip())
        self.orders = tuple(self.orders)
        if not self.orders or any(o not in ORDERS for o in self.orders) or len(set(self.orders)) != len(self.orders):
            raise ConfigError(f"orders={describe(self.orders)} must list distinct values among {list(ORDERS)}")
        check_ints(self, ("top_k", "min_turns"))
        check_int("max_turns", self.max_turns, minimum=self.min_turns, allow_none=True, hint=f"min_turns={self.min_turns}")
        check_choice("on_leak", self.on_leak, LEAK_POLICIES)


@dataclass
class BuildSummary:
    """What a build kept and dropped, and why (written to ``build_summary.json``)."""

    sessions: int = 0
    sessions_kept: int = 0
    sessions_resumed: int = 0
    records_written: int = 0
    candidates_scored: int = 0
    candidates_kept: int = 0
    sessions_dropped: dict = field(default_factory=dict)
    candidates_dropped: dict = field(default_factory=dict)
    paraphrases: dict = field(default_factory=dict)
    leaks: list = field(default_factory=list)
    ranker: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_") or "x"


def build_records(sessions: Sequence[EditingSession], config: BuildConfig, *, ranker: Ranker | None = None,
                  paraphraser: Any | None = None, leakage: Any | None = None,
                  settings: dict | None = None) -> BuildSummary:
    """Build MIRA-Editing records from ``sessions`` into ``config.out`` (see the module docstring).

    ``ranker``: a :class:`Ranker` (``mira_env.rewards.ranking.RewardRanker`` wraps any reward);
    ``paraphraser``: a :class:`~mira_env.data.paraphrase.Paraphraser`; ``leakage``: a
    :class:`~mira_env.data.leakage.LeakageIndex`; ``settings``: extra settings recorded (and compared
    on resume), such as the reward and paraphrase configuration.
    """
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    recorded = {"orders": list(config.orders), "seed": config.seed, "top_k": config.top_k,
                "min_score": config.min_score, "min_turns": config.min_turns, "max_turns": config.max_turns,
                "ranker": getattr(ranker, "name", None), **(settings or {})}
    settings_path = out / SETTINGS_FILE
    if settings_path.is_file():
        previous = json.loads(settings_path.read_text(encoding="utf-8"))
        changed = sorted(k for k in set(previous) | set(recorded) if previous.get(k) != recorded.get(k))
        if changed:
            listed = ", ".join(f"{k}: {previous.get(k)!r} -> {recorded.get(k)!r}" for k in changed)
            raise BuildError(f"{out} was built with other settings ({listed}); use a new output folder or the same "
                             "settings")
    else:
        settings_path.write_text(json.dumps(recorded, indent=2), encoding="utf-8")
    done = read_state(out)
    repair_records(out, done)
    summary = BuildSummary(ranker=recorded["ranker"])
    dropped: Counter = Counter()
    candidates_dropped: Counter = Counter()
    paraphrase_counts: Counter = Counter()
    seen_keys = {row["key"]: sid for sid, row in done.items() if row.get("key")}
    bar = None
    if config.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(sessions), desc="sessions", unit="session")
    try:
        for session in sessions:
            summary.sessions += 1
            if session.id in done:
                summary.sessions_resumed += 1
                row = done[session.id]
            else:
                stats = _Stats()
                row = _build_one(session, config, out, ranker, paraphraser, leakage, seen_keys, stats)
                row.update(stats.to_json())
                append_state(out, row)
            # the summary is made from the state rows, so a resumed build reports the whole build
            if row["status"] == "kept":
                summary.sessions_kept += 1
                summary.records_written += row.get("records", 0)
            else:
                dropped[row["reason_kind"]] += 1
                if row["reason_kind"] == "leak":
                    summary.leaks.append({"session": session.id, "reason": row["reason"]})
            candidates_dropped.update(row.get("candidates_dropped", {}))
            paraphrase_counts.update(row.get("paraphrases", {}))
            summary.candidates_scored += row.get("candidates_scored", 0)
            summary.candidates_kept += row.get("candidates_kept", 0)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(kept=summary.sessions_kept, dropped=sum(dropped.values()))
    finally:
        if bar is not None:
            bar.close()
        summary.sessions_dropped = dict(sorted(dropped.items()))
        summary.candidates_dropped = dict(sorted(candidates_dropped.items()))
        summary.paraphrases = dict(sorted(paraphrase_counts.items()))
        (out / SUMMARY_FILE).write_text(json.dumps(summary.to_json(), indent=2), encoding="utf-8")
    return summary


@dataclass
class _Stats:
    """What one session's build counted (stored in its state line)."""

    candidates_dropped: Counter = field(default_factory=Counter)
    paraphrases: Counter = field(default_factory=Counter)
    candidates_scored: int = 0
    candidates_kept: int = 0

    def to_json(self) -> dict:
        return {"candidates_dropped": dict(self.candidates_dropped), "paraphrases": dict(self.paraphrases),
                "candidates_scored": self.candidates_scored, "candidates_kept": self.candidates_kept}


def _drop(session: EditingSession, kind: str, reason: str, key: str | None = None) -> dict:
    return {"session": session.id, "status": "dropped", "reason_kind": kind, "reason": reason, "key": key}


def _build_one(session: EditingSession, config: BuildConfig, out: Path, ranker: Ranker | None, paraphraser: Any,
               leakage: Any, seen_keys: dict[str, str], stats: _Stats) -> dict:
    turns = len(session.turns)
    if turns < config.min_turns:
        return _drop(session, "too_few_turns", f"{turns} turn(s) < min_turns={config.min_turns}")
    if config.max_turns is not None and turns > config.max_turns:
        return _drop(session, "too_many_turns", f"{turns} turns > max_turns={config.max_turns}")
    try:
        source = session.load_source()
    except TaskError as exc:
        return _drop(session, "unreadable_source", str(exc))
    key = session_key(source, session.instructions)
    if key in seen_keys:
        return _drop(session, "duplicate", f"same source image and instructions as session {seen_keys[key]!r}", key)
    seen_keys[key] = session.id
    loaded: list[RankItem] = []
    ordered = merge(session.instructions, "ordered")
    for candidate in session.all_candidates():
        try:
            images = [step.load(f"session {session.id!r} candidate {candidate.name!r} step {i + 1}")
                      for i, step in enumerate(candidate.steps)]
        except TaskError:
            stats.candidates_dropped["unreadable_image"] += 1
            continue
        loaded.append(RankItem(session, candidate, ordered, source, images))
    if leakage is not None:
        turn_images = next((item.images for item in loaded if item.candidate.name == REFERENCE), [])
        why = leakage.check(session, [source, *turn_images])
        if why is not None:
            if config.on_leak == "error":
                raise BuildError(f"session {session.id!r} leaks into the evaluation set: {why}; remove it from the "
                                 "sessions or pass --on-leak drop")
            return _drop(session, "leak", why, key)
    if not loaded:
        return _drop(session, "no_trajectory", "no candidate trajectory with readable images "
                     "(the session's turns have no images and no other candidate loaded)", key)
    kept: list[tuple[RankItem, float | None]]
    if ranker is None:
        reference = [item for item in loaded if item.candidate.name == REFERENCE]
        if not reference:
            return _drop(session, "unranked", f"{len(loaded)} candidate(s) and no reference trajectory: configure a "
                         "reward (--reward) to rank them", key)
        if len(loaded) > 1:
            stats.candidates_dropped["not_ranked"] += len(loaded) - 1
        kept = [(reference[0], None)]
    else:
        scores = ranker.score(loaded)
        if len(scores) != len(loaded):
            raise BuildError(f"ranker {ranker.name!r} returned {len(scores)} scores for {len(loaded)} candidates")
        stats.candidates_scored += len(loaded)
        scored = []
        for item, (value, _reason) in zip(loaded, scores):
            if value is None:
                stats.candidates_dropped["unscored"] += 1
            elif config.min_score is not None and value < config.min_score:
                stats.candidates_dropped["below_min_score"] += 1
            else:
                scored.append((item, float(value)))
        scored.sort(key=lambda pair: -pair[1])  # stable: ties keep the reference (listed first) first
        if len(scored) > config.top_k:
            stats.candidates_dropped["below_top_k"] += len(scored) - config.top_k
        kept = scored[: config.top_k]
        if not kept:
            reasons = "; ".join(f"{item.candidate.name}: {r or f'score {v}'}" for item, (v, r) in zip(loaded, scores))
            return _drop(session, "no_candidate_kept", f"no candidate passed the ranking ({reasons})", key)
    stats.candidates_kept += len(kept)
    records = []
    for rank, (item, score) in enumerate(kept, start=1):
        shared: dict | None = None  # the first order's written images, reused by the other orders
        for order in config.orders:
            record = _record(item, order, rank, score, key, config, ranker, paraphraser, stats.paraphrases, shared)
            if shared is None:
                shared = record_to_json(record, out)
                record = _with_paths(record, shared)
            records.append(record)
    write_records(records, out, append=True)
    return {"session": session.id, "status": "kept", "records": len(records), "key": key,
            "candidates": [item.candidate.name for item, _ in kept]}


def _with_paths(record: EditingRecord, written: dict) -> EditingRecord:
    """``record`` with its images replaced by the paths ``written`` (a :func:`record_to_json` result) holds."""
    steps = [TrajectoryStep(step.instruction, image_path=raw["image"]) for step, raw in
             zip(record.trajectory, written["trajectory"])]
    return EditingRecord(id=record.id, complex_instruction=record.complex_instruction,
                         source_path=written["source_image"], trajectory=steps, variants=record.variants,
                         final_path=written["final_image"], target_path=written["target_image"],
                         metadata=record.metadata)


def _record(item: RankItem, order: str, rank: int, score: float | None, key: str, config: BuildConfig,
            ranker: Ranker | None, paraphraser: Any, paraphrase_counts: Counter,
            shared: dict | None = None) -> EditingRecord:
    session, candidate = item.session, item.candidate
    record_id = f"{_slug(session.id)}-{_slug(candidate.name)}-{order}"
    complex_instruction = merge(session.instructions, order, seed=config.seed, key=session.id)
    metadata: dict[str, Any] = {
        "source": session.metadata.get("source", "sessions"), "session_id": session.id, "session_key": key,
        "order": order, "candidate": candidate.name, "candidate_origin": candidate.origin, "rank": rank,
        "score": score, "reward": getattr(ranker, "name", None), "num_turns": len(session.turns),
    }
    if order == "shuffled":
        metadata["shuffled_order"] = shuffled_order(len(session.turns), config.seed, session.id)
    variants: list[str] = []
    if paraphraser is not None:
        result = paraphraser.paraphrase(complex_instruction, order)
        if result.error is not None:
            metadata["paraphrase_error"] = result.error
            paraphrase_counts["failed"] += 1
        else:
            variants = list(result.variants)
            paraphrase_counts["cached" if result.cached else "requested"] += 1
    if shared is not None:
        return _with_paths(EditingRecord(id=record_id, complex_instruction=complex_instruction,
                                         trajectory=[TrajectoryStep(s.instruction) for s in candidate.steps],
                                         variants=variants, metadata=metadata), shared)
    steps = [TrajectoryStep(step.instruction, image=image) for step, image in zip(candidate.steps, item.images)]
    # The target is the session's own last turn image: for the reference trajectory that is its last
    # step (the path the writer gives it), for another candidate a copy of the session's image.
    target_image, target_path = None, None
    if candidate.name == REFERENCE:
        target_path = f"images/{record_id}/step_{len(steps)}.png"
    elif session.turns[-1].has_image:
        try:
            target_image = session.turns[-1].load(f"session {session.id!r} last turn image")
        except TaskError as exc:
            metadata["target_error"] = str(exc)
    return EditingRecord(id=record_id, complex_instruction=complex_instruction, source_image=item.source,
                         trajectory=steps, variants=variants, target_image=target_image, target_path=target_path,
                         metadata=metadata)
