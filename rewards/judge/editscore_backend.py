"""Judge backend on the ``editscore`` package (EditScore reward models; optional extra).

``pip install 'mira-env[editscore]'``. ``kwargs`` go to ``editscore.EditScore(...)`` (``backbone``,
``model_name_or_path``, ``openai_url``, ``key``, ``score_range``, ``temperature``, ``seed``,
``lora_path``, ...), except ``num_pass`` (the passes are run here, see below) and ``key_env`` (the
name of an environment variable holding ``key``). Backbones: ``openai`` (any OpenAI-compatible chat
endpoint: ``openai_url`` is the full ``.../v1/chat/completions`` URL), ``qwen25vl`` / ``qwen3vl``
(transformers, CUDA only), ``qwen25vl_vllm`` / ``qwen3vl_vllm`` (vLLM), ``internvl3_5`` (lmdeploy).

Conventions, EditScore's and ours:

- **SC** is the minimum of the SC sub-scores (EditScore asks for [prompt following, consistency]) on a
  0-10 scale (EditScore divides by ``score_range / 10``). Its ``evaluate`` also returns
  ``prompt_following`` alone; that is NOT our SC. **PQ** is the minimum of its sub-scores.
- **Overall** ``O = sqrt(SC * PQ)`` is computed by :class:`~mira_env.rewards.judge.VLMJudge` from the
  averaged SC and PQ (EditScore's ``reduction="average_first"``).
- **Passes**: with ``num_pass = N`` the item is judged N times with seeds ``seed, seed + 1, ...`` (as
  EditScore seeds its passes) and SC, PQ are the means over the passes that produced a score.

Known problems of editscore 0.2, handled here:

- ``batch_evaluate`` calls ``self.model.batch_inference``, which only the vLLM backbones have: it is
  used for ``*_vllm`` backbones only; every other backbone is judged item by item with ``evaluate``.
- ``batch_evaluate`` replaces an unparsed or out-of-range score with the midpoint of the range, and
  ``evaluate`` with a random guess after two unparsed tries (``"guess_if_cannot_parse"``): both are
  detected (the raw answers are parsed again with the package's own parser) and scored ``None`` with
  the reason, never as a number. A failing item (HTTP error, ``rate_limit_exceeded``) fails alone.
- ``import editscore`` inserts ``'editscore'`` at the front of ``sys.path``, and the wheel installs a
  top-level ``examples`` package: the import happens only when this backend is built, ``sys.path`` is
  restored right after it, and nothing here imports ``examples`` (it can still shadow another package
  named ``examples`` in the same environment: that is the package's layout, not ours).

A custom ``scorer=`` object (anything with ``evaluate(images, text)`` and optionally
``batch_evaluate(images_list, texts)`` returning EditScore's output keys) is used as given: its
``batch_evaluate`` when it has one, else ``evaluate``; it is called once per pass only when it has no
``num_pass`` of its own.
"""

from __future__ import annotations

import math
import os
import sys
from collections import OrderedDict
from typing import Any, Sequence

from mira_env.validate import check_int

from mira_env.rewards.errors import RewardConfigError, describe, missing_extra
from mira_env.rewards.judge.core import JudgeRequest, JudgeResult

VLLM_BACKBONES = ("qwen25vl_vllm", "qwen3vl_vllm")
GUESS_MARK = "guess_if_cannot_parse"


def import_editscore():
    """``import editscore`` with its ``sys.path`` edit undone; a clear error when the extra is missing."""
    saved = list(sys.path)
    try:
        import editscore
    except ImportError:
        raise missing_extra("editscore", "editscore", "the 'editscore' judge backend") from None
    finally:
        sys.path[:] = saved
    return editscore


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class EditScoreJudge:
    """Scores SC and PQ with ``editscore.EditScore`` (see the module docstring)."""

    def __init__(self, scorer: Any | None = None, **kwargs: Any) -> None:
        kwargs = dict(kwargs)
        num_pass = kwargs.pop("num_pass", 1)
        check_int("editscore num_pass", num_pass, error=RewardConfigError)
        key_env = kwargs.pop("key_env", None)
        if key_env is not None:
            if not os.environ.get(key_env):
                raise RewardConfigError(f"editscore key_env={key_env!r}: the environment variable is not set")
            kwargs["key"] = os.environ[key_env]
        self.num_pass = num_pass
        self.custom = scorer is not None
        if scorer is None:
            module = import_editscore()
            scorer = module.EditScore(**{**kwargs, "num_pass": 1})
        self.scorer = scorer
        self.backbone = str(getattr(scorer, "backbone", kwargs.get("backbone", "custom")))
        self.score_range = float(getattr(scorer, "score_range", kwargs.get("score_range", 10)) or 10)
        self.base_seed = int(getattr(scorer, "seed", kwargs.get("seed", 42)) or 0)
        #: recent evaluations (both aspects), so the PQ request of an item judged for SC is not sent again
        self._pairs: OrderedDict[tuple, list] = OrderedDict()
        self.max_pairs = 4096
        shown = {k: v for k, v in kwargs.items() if k != "key"}
        self.id = "editscore:" + ":".join(f"{k}={shown[k]}" for k in sorted(shown)) + f":num_pass={num_pass}"

    # ------------------------------------------------------------------ one pass
    def _batched(self) -> bool:
        if self.custom:
            return callable(getattr(self.scorer, "batch_evaluate", None))
        return self.backbone in VLLM_BACKBONES

    def _parse_raw(self, raw: Any) -> list[float] | None:
        """The sub-scores of a raw answer by EditScore's own parser (0-10 scale), None if unparsed."""
        if not isinstance(raw, str):
            return None
        from editscore.json_parser import parse_vlm_output_to_dict

        scores = parse_vlm_output_to_dict(raw).get("score") or []
        values = [v * 10.0 / self.score_range for v in (_finite(s) for s in scores) if v is not None]
        if not values or any(v < 0 or v > 10 for v in values):
            return None
        return values

    def _from_batch(self, output: dict) -> dict[str, tuple[float | None, tuple, str, str | None]]:
        """SC / PQ of one ``batch_evaluate`` output: (score, subscores, raw, reason)."""
        out = {}
        for aspect, key in (("sc", "SC"), ("pq", "PQ")):
            raw = output.get(f"{key}_raw_output")
            value = _finite(output.get(f"{key}_score"))
            if isinstance(raw, str):
                parsed = self._parse_raw(raw)
                if parsed is None:
                    out[aspect] = (None, (), str(raw), f"editscore could not parse the {key} answer (batch_evaluate "
                                   "would have scored it as the midpoint of the range)")
                    continue
                out[aspect] = (min(parsed), tuple(parsed), str(raw), None)
            elif value is not None:
                out[aspect] = (value, (value,), str(output), None)
            else:
                out[aspect] = (None, (), str(output), f"editscore returned no {key} score")
        return out

    def _from_evaluate(self, output: dict) -> dict[str, tuple[float | None, tuple, str, str | None]]:
        out = {}
        sc_reasoning = str(output.get("SC_reasoning", ""))
        pq_reasoning = str(output.get("PQ_reasoning", ""))
        subs = tuple(v for v in (_finite(output.get("prompt_following")), _finite(output.get("consistency")))
                     if v is not None)
        if sc_reasoning.startswith(GUESS_MARK):
            out["sc"] = (None, (), sc_reasoning, "editscore could not parse the SC answer (evaluate would have "
                         "returned a random guess)")
        elif subs:
            out["sc"] = (min(subs), subs, sc_reasoning, None)
        else:
            out["sc"] = (None, (), str(output), "editscore returned no SC sub-scores")
        pq = _finite(output.get("perceptual_quality"))
        if pq_reasoning.startswith(GUESS_MARK):
            out["pq"] = (None, (), pq_reasoning, "editscore could not parse the PQ answer (evaluate would have "
                         "returned a random guess)")
        elif pq is not None:
            out["pq"] = (pq, (pq,), pq_reasoning, None)
        else:
            out["pq"] = (None, (), str(output), "editscore returned no PQ score")
        return out

    def _one_pass(self, images: list, texts: list[str], seed: int) -> list[dict | Exception]:
        if not self.custom and hasattr(self.scorer, "seed"):
            self.scorer.seed = seed
        if self._batched():
            try:
                outputs = list(self.scorer.batch_evaluate(images, texts))
            except Exception as exc:  # noqa: BLE001 - the whole batch failed; recorded per item
                return [exc] * len(images)
            if len(outputs) != len(images):
                return [RuntimeError(f"batch_evaluate returned {len(outputs)} outputs for {len(images)} items")] \
                    * len(images)
            return [self._from_batch(o) if isinstance(o, dict) else TypeError(f"output is {describe(o)}")
                    for o in outputs]
        results: list[dict | Exception] = []
        for pair, text in zip(images, texts):
            try:
                output = self.scorer.evaluate(pair, text)
                results.append(self._from_evaluate(output) if isinstance(output, dict)
                               else TypeError(f"evaluate returned {describe(output)}"))
            except Exception as exc:  # noqa: BLE001 - one failing item (HTTP error, rate limit) fails alone
                results.append(exc)
        return results

    # ------------------------------------------------------------------ judge protocol
    def judge(self, requests: Sequence[JudgeRequest]) -> list[JudgeResult]:
        from mira_env.rewards.images import image_hash

        keys = []
        todo: dict[tuple, int] = {}
        images, texts = [], []
        for request in requests:
            source = request.source if request.source is not None else request.edited
            key = (image_hash(source), image_hash(request.edited), request.instruction)
            keys.append(key)
            if key not in self._pairs and key not in todo:
                todo[key] = len(images)
                images.append([source, request.edited])
                texts.append(request.instruction)
        if images:
            passes = 1 if self.custom and hasattr(self.scorer, "num_pass") else self.num_pass
            per_pass = [self._one_pass(images, texts, self.base_seed + i) for i in range(passes)]
            for key, index in todo.items():  # SC and PQ come from one evaluation: keep both for the other aspect
                self._pairs[key] = [outputs[index] for outputs in per_pass]
                self._pairs.move_to_end(key)
            while len(self._pairs) > self.max_pairs:
                self._pairs.popitem(last=False)
        results = []
        for request, key in zip(requests, keys):
            values, subs, raws, reasons = [], [], [], []
            for output in self._pairs[key]:
                if isinstance(output, Exception):
                    reasons.append(f"editscore: {type(output).__name__}: {output}")
                    continue
                value, sub, raw, reason = output[request.aspect]
                raws.append(raw)
                if value is None:
                    reasons.append(reason)
                else:
                    values.append(value)
                    subs.append(sub)
            if values:
                mean = sum(values) / len(values)
                subscores = tuple(sum(s[i] for s in subs) / len(subs) for i in range(min(len(s) for s in subs)))
                results.append(JudgeResult(mean, subscores, raws[0] if raws else None))
            else:
                results.append(JudgeResult(None, (), raws[0] if raws else None, "; ".join(dict.fromkeys(reasons))))
        return results
