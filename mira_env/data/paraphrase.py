"""Paraphrases of complex instructions through any OpenAI-compatible chat endpoint (vLLM, a hosted model).

The prompt (:data:`PARAPHRASE_PROMPT`, version :data:`PROMPT_VERSION`) asks for ``count`` rewrites, one
per line, that keep every edit and its objects, attributes and positions; for an instruction merged
in order it also asks to keep the order. The request is one ``POST {base_url}/chat/completions`` with
``temperature`` and ``seed`` (servers that honour ``seed``, such as vLLM, then answer the same way twice).

Answers are cached on disk (JSON lines at ``cache_path``), keyed by the endpoint's model, the prompt
version, the instruction, the order, ``count``, ``temperature`` and ``seed``: a rebuild sends nothing
already answered. A failure (the endpoint down, an HTTP error, an answer without usable lines) is
returned as :class:`Paraphrases` with ``error`` set and never raised; it is not cached, so the next
build asks again. The HTTP calls go through :class:`mira_env.http.HTTPClient` (retries, deadline,
redaction of the API key).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mira_env.errors import ConfigError, describe
from mira_env.validate import check_choice, check_int

PROMPT_VERSION = "mira-paraphrase-v1"

PARAPHRASE_PROMPT = (
    "Rewrite the image-editing request below in {count} different ways. Keep every edit it asks for, with "
    "the same objects, attributes, colours, sizes and positions; add nothing and leave nothing out. {order_rule} "
    "Vary the wording and the sentence structure. Answer with exactly {count} lines, one rewrite per line, "
    "with no numbering, no quotes and no other text.\n\nRequest: {instruction}"
)
ORDER_RULES = {
    "ordered": "The edits must stay in the order in which the request lists them.",
    "shuffled": "The edits may be listed in any order.",
}
_LEADING = re.compile(r"^\s*(?:[-*\u2022]|\(?\d+[.)]|rewrite\s*\d*\s*:)\s*", re.IGNORECASE)


@dataclass
class ParaphraseConfig:
    """Where and how to ask for paraphrases."""

    base_url: str = field(metadata={"help": "OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1."})
    model: str = field(metadata={"help": "The endpoint's model name."})
    count: int = field(default=2, metadata={"help": "Paraphrases asked for per complex instruction."})
    temperature: float = field(default=0.7, metadata={"help": "Sampling temperature sent with the request."})
    seed: int = field(default=0, metadata={"help": "Sampling seed sent with the request (part of the cache key)."})
    max_tokens: int = field(default=512, metadata={"help": "Answer budget in tokens."})
    api_key_env: str | None = field(default="OPENAI_API_KEY", metadata={
        "help": "Environment variable holding the API key; None or unset = no Authorization header."})
    timeout_s: float = field(default=60.0, metadata={"help": "Timeout of one HTTP attempt, in seconds."})
    max_retries: int = field(default=2, metadata={"help": "HTTP retries after the first attempt."})
    cache_path: str | None = field(default=None, metadata={
        "help": "JSONL file caching answers across builds (default: none; mira data build uses <out>/paraphrases.jsonl)."})

    def __post_init__(self) -> None:
        if not isinstance(self.base_url, str) or not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"paraphrase base_url={describe(self.base_url)} must start with http:// or https://")
        if not isinstance(self.model, str) or not self.model:
            raise ConfigError(f"paraphrase model={describe(self.model)} must be the endpoint's model name")
        check_int("paraphrase count", self.count)
        check_int("paraphrase seed", self.seed, minimum=None)


@dataclass
class Paraphrases:
    """The paraphrases of one instruction, or the reason there are none."""

    variants: list[str]
    error: str | None = None
    cached: bool = False


def build_prompt(instruction: str, order: str, count: int) -> str:
    """The user message sent for ``instruction`` (see :data:`PARAPHRASE_PROMPT`)."""
    check_choice("order", order, ORDER_RULES)
    return PARAPHRASE_PROMPT.format(count=count, order_rule=ORDER_RULES[order], instruction=instruction)


def parse_answer(answer: str, instruction: str, count: int) -> list[str]:
    """Usable lines of an answer: numbering, bullets and quotes stripped; blanks, duplicates and copies of
    the instruction dropped; at most ``count``."""
    def norm(text: str) -> str:
        return " ".join(text.lower().split()).rstrip(" .!?;,")

    seen = {norm(instruction)}
    out = []
    for line in answer.splitlines():
        text = _LEADING.sub("", line).strip().strip("\"'\u201c\u201d").strip()
        key = norm(text)
        if not text or key in seen:
            continue
        seen.add(key)
        out.append(text)
    return out[:count]


class Paraphraser:
    """Asks an OpenAI-compatible endpoint for paraphrases, with an on-disk cache (see the module docstring)."""

    def __init__(self, config: ParaphraseConfig, client: Any | None = None) -> None:
        self.config = config
        self._client = client
        self._lock = threading.Lock()
        self._cache: dict[str, list[str]] = {}
        self.requests = 0
        self.path = Path(config.cache_path) if config.cache_path else None
        if self.path is not None and self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    self._cache[row["key"]] = list(row["variants"])
                except (ValueError, KeyError, TypeError):
                    continue  # a torn last line of a killed build

    def key(self, instruction: str, order: str) -> str:
        c = self.config
        parts = [c.model, PROMPT_VERSION, instruction, order, c.count, c.temperature, c.seed]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()

    @property
    def client(self):
        if self._client is None:
            from mira_env.http import HTTPClient

            token = os.environ.get(self.config.api_key_env) if self.config.api_key_env else None
            self._client = HTTPClient(self.config.base_url.rstrip("/"), bearer_token=token or None,
                                      timeout_s=self.config.timeout_s, max_retries=self.config.max_retries)
        return self._client

    def paraphrase(self, instruction: str, order: str = "ordered") -> Paraphrases:
        """Paraphrases of ``instruction`` (cached, or asked for); never raises for an endpoint failure."""
        key = self.key(instruction, order)
        with self._lock:
            if key in self._cache:
                return Paraphrases(list(self._cache[key]), cached=True)
        c = self.config
        payload = {"model": c.model, "temperature": c.temperature, "seed": c.seed, "max_tokens": c.max_tokens,
                   "messages": [{"role": "user", "content": build_prompt(instruction, order, c.count)}]}
        try:
            self.requests += 1
            answer = self.client.post_json("/chat/completions", payload)
            text = answer["choices"][0]["message"]["content"]
            if not isinstance(text, str):
                raise TypeError(f"message content is {describe(text)}")
        except Exception as exc:  # noqa: BLE001 - a failed paraphrase is recorded, never fatal
            from mira_env.redact import error_text

            return Paraphrases([], error=f"paraphrase request failed: {error_text(exc)}")
        variants = parse_answer(text, instruction, c.count)
        if not variants:
            return Paraphrases([], error=f"the answer had no usable paraphrase lines: {text[:200]!r}")
        with self._lock:
            self._cache[key] = variants
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps({"key": key, "instruction": instruction, "order": order,
                                             "variants": variants}) + "\n")
        return Paraphrases(variants)

    def close(self) -> None:
        if self._client is not None and hasattr(self._client, "close"):
            self._client.close()
