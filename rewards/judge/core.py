"""The judge core: requests, results, the result cache and the prompted-backend base.

A *backend* turns :class:`JudgeRequest` (aspect ``"sc"`` or ``"pq"``, images, instruction) into
:class:`JudgeResult` (a 0-10 score or ``None`` with the reason, plus the raw answer). Prompted
backends (local transformers VLM, OpenAI-compatible endpoint) subclass :class:`PromptedBackend` and
only implement ``generate``; the ``editscore`` backend scores directly.

:class:`VLMJudge` puts a backend behind :class:`JudgeCache`, keyed by
``(aspect, source hash, edited hash, instruction, backend.id, PROMPT_VERSION)`` (PQ ignores the source
and the instruction), and deduplicates within a batch, so nothing is ever scored twice: the SC, PQ
and overall terms of one composite share one judge and one cache.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from PIL import Image

from mira_env.validate import check_choice

from mira_env.rewards.errors import RewardConfigError, choice_error, describe
from mira_env.rewards.images import image_hash
from mira_env.rewards.judge.parsing import parse_scores
from mira_env.rewards.judge.prompts import PROMPT_VERSION, pq_prompt, sc_prompt

ASPECTS = ("sc", "pq")
REDUCTIONS = ("min", "mean")


@dataclass(frozen=True)
class JudgeRequest:
    """One judgement: ``aspect`` ``"sc"`` (source + edited + instruction) or ``"pq"`` (edited only).

    PQ requests still carry the source and instruction (a backend such as EditScore evaluates both
    aspects of an item together), but PQ prompts, images shown and cache keys use the edited image only.
    """

    aspect: str
    edited: Image.Image
    source: Image.Image | None = None
    instruction: str = ""

    def images(self) -> list[Image.Image]:
        """The images shown to the judge, in order."""
        return [self.source, self.edited] if self.aspect == "sc" else [self.edited]

    def prompt(self) -> str:
        return sc_prompt(self.instruction) if self.aspect == "sc" else pq_prompt()


@dataclass
class JudgeResult:
    """A 0-10 score or ``None``; ``subscores`` are the parsed numbers, ``raw`` the judge's answer."""

    score: float | None
    subscores: tuple[float, ...] = ()
    raw: str | None = None
    reason: str | None = None
    cached: bool = field(default=False, compare=False)

    def to_json(self) -> dict:
        return {"score": self.score, "subscores": list(self.subscores), "raw": self.raw, "reason": self.reason}


def request_key(request: JudgeRequest, judge_id: str) -> str:
    """The cache key of a request for the judge ``judge_id``."""
    if request.aspect == "sc":
        parts = ["sc", image_hash(request.source), image_hash(request.edited), request.instruction]
    else:
        parts = ["pq", "", image_hash(request.edited), ""]
    parts += [judge_id, PROMPT_VERSION]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


#: the range every judge score is on (VIEScore's 0-10)
SCORE_RANGE = (0.0, 10.0)


def valid_result(result: JudgeResult) -> bool:
    """Whether ``result`` is servable: a finite score in :data:`SCORE_RANGE` with numeric sub-scores, or no
    score with a str raw answer / reason."""
    score = result.score
    if score is None:
        return result.raw is None or isinstance(result.raw, str)
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        return False
    if not SCORE_RANGE[0] <= float(score) <= SCORE_RANGE[1]:
        return False
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in result.subscores)


class JudgeCache:
    """An LRU map ``key -> JudgeResult`` (``max_items``), optionally persisted as JSON lines at ``path``.

    Only answered judgements are stored (a parsed score, or an unparseable answer with its raw text);
    transport failures are not, so they are retried next time. A stored result is served only if it is
    valid (:func:`valid_result`: a finite score in [0, 10], or no score with the raw answer): an edited
    or corrupt cache file cannot inject a score outside the declared range. ``rejected`` counts the
    rows refused. Raw answers are redacted (:mod:`mira_env.redact`) before they reach the file.
    """

    def __init__(self, max_items: int = 100_000, path: str | Path | None = None) -> None:
        self.max_items = max_items
        self.path = Path(path) if path is not None else None
        self._items: OrderedDict[str, JudgeResult] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = self.rejected = 0
        if self.path is not None and self.path.is_file():
            for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    row = json.loads(line)
                    result = JudgeResult(row["score"], tuple(row["subscores"]), row["raw"], row["reason"])
                except (ValueError, KeyError, TypeError, RecursionError):
                    self.rejected += 1
                    continue
                if not isinstance(row["key"], str) or not valid_result(result):
                    self.rejected += 1
                    continue
                self._items[row["key"]] = result

    def get(self, key: str) -> JudgeResult | None:
        with self._lock:
            result = self._items.get(key)
            if result is not None and not valid_result(result):
                del self._items[key]
                self.rejected += 1
                result = None
            if result is None:
                self.misses += 1
                return None
            self.hits += 1
            self._items.move_to_end(key)
            return JudgeResult(result.score, result.subscores, result.raw, result.reason, cached=True)

    def put(self, key: str, result: JudgeResult) -> None:
        if (result.score is None and result.raw is None) or not valid_result(result):
            return
        with self._lock:
            self._items[key] = result
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                from mira_env.redact import redact_obj

                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps({"key": key, **redact_obj(result.to_json())}) + "\n")

    def __len__(self) -> int:
        return len(self._items)


class PromptedBackend:
    """Base of the text-generating judges: prompt -> ``generate`` -> :func:`parse_scores` -> reduce.

    Subclasses implement ``generate(requests) -> list[str | Exception]`` (one answer per request, in
    order; an exception for an item that failed) and set ``id`` (model + settings, for the cache).
    ``reduction``: ``"min"`` (VIEScore) or ``"mean"`` of the parsed sub-scores; an answer with one
    number uses it as is.
    """

    id: str = "prompted"

    def __init__(self, reduction: str = "min", scale: float = 10.0) -> None:
        check_choice("judge reduction", reduction, REDUCTIONS, error=RewardConfigError)
        self.reduction = reduction
        self.scale = float(scale)

    def generate(self, requests: Sequence[JudgeRequest]) -> list[str | Exception]:
        raise NotImplementedError

    def reduce(self, values: Sequence[float]) -> float:
        values = list(values[:2]) if len(values) >= 2 else list(values)
        value = min(values) if self.reduction == "min" else sum(values) / len(values)
        return value * 10.0 / self.scale

    def judge(self, requests: Sequence[JudgeRequest]) -> list[JudgeResult]:
        try:
            answers = self.generate(requests)
        except Exception as exc:  # noqa: BLE001 - every item fails with the reason
            answers = [exc] * len(requests)
        if len(answers) != len(requests):
            answers = [RuntimeError(f"backend returned {len(answers)} answers for {len(requests)} requests")] \
                * len(requests)
        results = []
        for answer in answers:
            if isinstance(answer, BaseException):
                from mira_env.redact import error_text

                results.append(JudgeResult(None, reason=error_text(answer)))  # redacted, with its causes
                continue
            parsed = parse_scores(answer, self.scale)
            if parsed.values is None:
                results.append(JudgeResult(None, raw=answer, reason=f"unparseable judge answer: {parsed.reason}"))
            else:
                results.append(JudgeResult(self.reduce(parsed.values), parsed.values, answer))
        return results


class VLMJudge:
    """A judge backend behind a cache; scores ``sc`` / ``pq`` / ``overall`` for batches of reward inputs.

    ``overall = sqrt(SC * PQ)`` (VIEScore), on the same 0-10 scale; ``None`` when either is ``None``.
    """

    def __init__(self, backend, cache: JudgeCache | None = None) -> None:
        if not callable(getattr(backend, "judge", None)):
            raise RewardConfigError(f"judge backend={describe(backend)} has no judge(requests) method")
        self.backend = backend
        self.cache = cache if cache is not None else JudgeCache()
        self.calls = 0  # backend.judge calls (for tests and benchmarks)
        self.judged = 0  # requests sent to the backend

    @property
    def id(self) -> str:
        return str(getattr(self.backend, "id", type(self.backend).__name__))

    def judge_requests(self, requests: Sequence[JudgeRequest]) -> list[JudgeResult]:
        """Results for ``requests``: cached ones reused, the rest sent in ONE backend call (deduplicated)."""
        for request in requests:
            check_choice("judge aspect", request.aspect, ASPECTS, error=RewardConfigError)
        keys = [request_key(request, self.id) for request in requests]
        results: dict[str, JudgeResult] = {}
        todo: dict[str, JudgeRequest] = {}
        for key, request in zip(keys, requests):
            if key in results or key in todo:
                continue
            cached = self.cache.get(key)
            if cached is not None:
                results[key] = cached
            else:
                todo[key] = request
        if todo:
            self.calls += 1
            self.judged += len(todo)
            fresh = self.backend.judge(list(todo.values()))
            for key, result in zip(todo, fresh):
                if not valid_result(result):
                    result = JudgeResult(None, raw=result.raw if isinstance(result.raw, str) else None,
                                         reason=f"judge score {result.score!r} is outside [{SCORE_RANGE[0]:g}, "
                                                f"{SCORE_RANGE[1]:g}]")
                self.cache.put(key, result)
                results[key] = result
        return [results[key] for key in keys]

    def score(self, items, aspect: str) -> list[JudgeResult]:
        """``JudgeResult`` per reward input for ``aspect`` in ``("sc", "pq", "overall")``."""
        if aspect == "overall":
            both = self.judge_requests(
                [JudgeRequest("sc", item.edited, item.source, item.instruction) for item in items]
                + [JudgeRequest("pq", item.edited, item.source, item.instruction) for item in items])
            n = len(items)
            out = []
            for sc, pq in zip(both[:n], both[n:]):
                if sc.score is None or pq.score is None:
                    why = "; ".join(f"{name}: {r.reason}" for name, r in (("SC", sc), ("PQ", pq)) if r.score is None)
                    out.append(JudgeResult(None, raw=None, reason=f"overall needs SC and PQ ({why})"))
                else:
                    out.append(JudgeResult(math.sqrt(max(sc.score, 0.0) * max(pq.score, 0.0)), (sc.score, pq.score)))
            return out
        if aspect == "sc":
            return self.judge_requests([JudgeRequest("sc", item.edited, item.source, item.instruction)
                                        for item in items])
        if aspect == "pq":
            return self.judge_requests([JudgeRequest("pq", item.edited, item.source, item.instruction)
                                        for item in items])
        raise choice_error("judge aspect", aspect, ("sc", "pq", "overall"))
