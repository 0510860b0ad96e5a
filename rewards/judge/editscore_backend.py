"""Judge backend on the ``editscore`` package (EditScore reward models; optional extra).

``pip install 'mira-env[editscore]'``. Imported only when this backend is chosen. ``kwargs`` go to
``editscore.EditScore(...)`` unchanged (``backbone``, ``model_name_or_path``, ``enable_lora``,
``lora_path``, ``score_range``, ``num_pass``, ...). EditScore already returns SC and PQ on a 0-10
scale (it rescales its own ``score_range``). The package evaluates SC and PQ together, so the SC and PQ
requests of one item within a call share ONE evaluation.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from mira_env.rewards.errors import missing_extra
from mira_env.rewards.judge.core import JudgeRequest, JudgeResult


class EditScoreJudge:
    """Scores with ``editscore.EditScore.batch_evaluate`` (or ``evaluate`` per item when absent)."""

    def __init__(self, scorer: Any | None = None, **kwargs: Any) -> None:
        if scorer is None:
            try:
                from editscore import EditScore
            except ImportError:
                raise missing_extra("editscore", "editscore", "the 'editscore' judge backend") from None
            scorer = EditScore(**kwargs)
        self.scorer = scorer
        self.id = "editscore:" + ":".join(f"{k}={kwargs[k]}" for k in sorted(kwargs))

    @staticmethod
    def _pick(result: dict, *names: str) -> float | None:
        for name in names:
            value = result.get(name)
            if isinstance(value, (int, float)) and math.isfinite(float(value)):
                return float(value)
        return None

    def judge(self, requests: Sequence[JudgeRequest]) -> list[JudgeResult]:
        pairs: dict[tuple, int] = {}
        batch_images, batch_texts = [], []
        for request in requests:
            source = request.source if request.source is not None else request.edited
            key = (id(source), id(request.edited), request.instruction)
            if key not in pairs:
                pairs[key] = len(batch_images)
                batch_images.append([source, request.edited])
                batch_texts.append(request.instruction)
        try:
            if hasattr(self.scorer, "batch_evaluate"):
                outputs = list(self.scorer.batch_evaluate(batch_images, batch_texts))
            else:
                outputs = [self.scorer.evaluate(images, text) for images, text in zip(batch_images, batch_texts)]
        except Exception as exc:  # noqa: BLE001
            return [JudgeResult(None, reason=f"editscore: {type(exc).__name__}: {exc}") for _ in requests]
        results = []
        for request in requests:
            source = request.source if request.source is not None else request.edited
            output = outputs[pairs[(id(source), id(request.edited), request.instruction)]]
            if request.aspect == "sc":
                value = self._pick(output, "SC_score", "prompt_following")
            else:
                value = self._pick(output, "PQ_score", "perceptual_quality")
            raw = str(output.get("SC_raw_output" if request.aspect == "sc" else "PQ_raw_output", output))
            results.append(JudgeResult(value, (value,) if value is not None else (), raw,
                                       None if value is not None else f"editscore returned no {request.aspect} score"))
        return results
