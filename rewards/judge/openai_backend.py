"""Judge on any OpenAI-compatible ``/v1/chat/completions`` endpoint (OpenAI, vLLM, SGLang, LM Studio).

- ``base_url``: e.g. ``"https://api.openai.com/v1"`` or ``"http://127.0.0.1:8000/v1"``; the request
  goes to ``{base_url}/chat/completions``.
- API key: read from the environment variable NAMED by ``api_key_env`` (default ``OPENAI_API_KEY``);
  the value is sent as ``Authorization: Bearer ...`` and never logged, never in ``repr`` or errors.
  ``api_key_env=None`` sends no key (local servers). A named variable that is unset is an error.
- Images are sent as PNG data URIs (``image_url`` content parts), then the prompt text.
- Transport: :class:`mira_env.http.HTTPClient` (the project's one HTTP client): ``timeout_s`` per
  attempt, ``max_retries`` retries on connection errors, timeouts, HTTP 408/409/425/429 and 5xx with
  back-off ``min(max_backoff_s, backoff_s * 2**attempt)`` (or the server's ``Retry-After``, capped the same
  way), a total deadline per request, bounded response bodies; other HTTP errors fail at once. At most
  ``concurrency`` requests in flight.
- Works the same against ``vllm serve <VLM>``, any OpenAI-compatible server, and ``mira serve judge``
  (the local transformers judge served with this API).
"""

from __future__ import annotations

import base64
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from mira_env.validate import check_float, check_int

from mira_env.rewards.errors import RewardConfigError, describe, missing_extra
from mira_env.rewards.images import png_bytes
from mira_env.rewards.judge.core import JudgeRequest, PromptedBackend


class JudgeHTTPError(RuntimeError):
    """A request to the judge endpoint failed for good (after retries, or a non-retryable status)."""


def data_uri(image) -> str:
    """``image`` as a ``data:image/png;base64,...`` URI."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


class OpenAIJudge(PromptedBackend):
    """An OpenAI-compatible chat endpoint as a VIEScore-style judge (see the module docstring)."""

    def __init__(self, model: str, base_url: str = "https://api.openai.com/v1",
                 api_key_env: str | None = "OPENAI_API_KEY", timeout_s: float = 60.0, max_retries: int = 3,
                 backoff_s: float = 1.0, max_backoff_s: float = 30.0, concurrency: int = 4,
                 temperature: float = 0.0, max_tokens: int = 512, reduction: str = "min") -> None:
        super().__init__(reduction=reduction)
        try:
            import httpx  # noqa: F401 - the transport of mira_env.http
        except ImportError:
            raise missing_extra("httpx", "rewards", "the OpenAI-compatible judge") from None
        if not isinstance(model, str) or not model:
            raise RewardConfigError(f"judge model={describe(model)} must be the endpoint's model name")
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise RewardConfigError(f"judge base_url={describe(base_url)} must start with http:// or https://")
        check_int("judge max_retries", max_retries, minimum=0, error=RewardConfigError)
        check_int("judge concurrency", concurrency, error=RewardConfigError)
        for name, value in (("timeout_s", timeout_s), ("backoff_s", backoff_s), ("max_backoff_s", max_backoff_s)):
            check_float(f"judge {name}", value, minimum=0, error=RewardConfigError)
        self.__key: str | None = None
        if api_key_env is not None:
            value = os.environ.get(api_key_env)
            if not value:
                raise RewardConfigError(
                    f"the judge API key environment variable {api_key_env!r} is not set; export it, or pass "
                    "api_key_env=None for a local server that needs no key")
            self.__key = value
        self.model, self.base_url, self.api_key_env = model, base_url.rstrip("/"), api_key_env
        self.timeout_s, self.max_retries = float(timeout_s), max_retries
        self.backoff_s, self.max_backoff_s = float(backoff_s), float(max_backoff_s)
        self.concurrency, self.temperature, self.max_tokens = concurrency, temperature, max_tokens
        self.id = f"openai:{self.base_url}:{model}:t={temperature}:{reduction}"
        from mira_env.http import HTTPClient

        self._client = HTTPClient(self.base_url, bearer_token=self.__key, timeout_s=self.timeout_s,
                                  max_retries=max_retries, backoff_s=self.backoff_s, max_backoff_s=self.max_backoff_s,
                                  max_connections=concurrency)

    @property
    def requests_sent(self) -> int:
        """HTTP requests sent so far (retries included)."""
        return self._client.requests_sent

    def payload(self, request: JudgeRequest) -> dict:
        """The JSON body of one chat-completions request."""
        content = [{"type": "image_url", "image_url": {"url": data_uri(image)}} for image in request.images()]
        content.append({"type": "text", "text": request.prompt()})
        return {"model": self.model, "messages": [{"role": "user", "content": content}],
                "temperature": self.temperature, "max_tokens": self.max_tokens}

    def _post(self, body: dict) -> str:
        from mira_env.http import HTTPError

        url = f"{self.base_url}/chat/completions"
        try:
            data = self._client.post_json("/chat/completions", body)
        except HTTPError as exc:
            if exc.kind == "status" and exc.retryable:
                raise JudgeHTTPError(f"{url} failed after {exc.attempts} attempts; last: HTTP {exc.status}: "
                                     f"{(exc.body or '')[:200]!r}") from None
            raise JudgeHTTPError(str(exc)) from None
        try:
            message = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise JudgeHTTPError(f"malformed chat-completions response from {url}: "
                                 f"{type(exc).__name__}: {str(data)[:200]!r}") from None
        if isinstance(message, list):
            message = "".join(part.get("text", "") for part in message if isinstance(part, dict))
        return message if isinstance(message, str) else str(message)

    def _one(self, request: JudgeRequest) -> str | Exception:
        try:
            return self._post(self.payload(request))
        except Exception as exc:  # noqa: BLE001 - per-item failure
            return exc

    def generate(self, requests: Sequence[JudgeRequest]) -> list[str | Exception]:
        if len(requests) == 1 or self.concurrency == 1:
            return [self._one(r) for r in requests]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            return list(pool.map(self._one, requests))

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        key = f"${self.api_key_env}" if self.api_key_env else None
        return f"OpenAIJudge(model={self.model!r}, base_url={self.base_url!r}, api_key={key!r})"
