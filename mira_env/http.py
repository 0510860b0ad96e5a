"""The one HTTP client of mira-env: httpx with retries, a total deadline, bounded bodies, redaction.

Every component that talks HTTP (``RemoteEditor``, the API agent, the judge's OpenAI backend, the
editor/judge services' health checks) goes through :class:`HTTPClient`::

    from mira_env.http import HTTPClient, HTTPError

    client = HTTPClient("http://127.0.0.1:8000", bearer_token=token, timeout_s=60, max_retries=3)
    info = client.get_json("/v1/info")
    answer = client.post_json("/v1/edit", {"items": [...]})
    client.close()                      # or: with HTTPClient(...) as client: ...

Behaviour, per call (``request`` / ``get_json`` / ``post_json``):

- **Total deadline.** ``deadline_s`` (default ``timeout_s * (max_retries + 1)`` plus back-off) bounds
  the whole call, retries and sleeps included; each attempt's timeout is ``min(timeout_s, time left)``.
- **Retries with back-off** on connection errors, timeouts, protocol errors and the statuses in
  ``retry_status`` (default :data:`RETRY_STATUS`: 408, 409, 425, 429, 500, 502, 503, 504): sleep
  ``min(max_backoff_s, backoff_s * 2**attempt)`` times a jitter in [0.5, 1], or the server's
  ``Retry-After`` (capped the same way), never past the deadline. Other 4xx fail at once. ``retry=False`` on a call turns retries off for it.
- **Bounded bodies.** Responses are streamed and refused past ``max_response_bytes`` (default 256 MiB);
  requests larger than ``max_request_bytes`` are refused before sending.
- **Clear errors.** Everything raises :class:`HTTPError` (a :class:`~mira_env.errors.MiraError`) with
  ``kind`` (``"connect"``, ``"timeout"``, ``"deadline"``, ``"status"``, ``"decode"``, ``"too_large"``,
  ``"protocol"``), ``status``, ``url``, ``attempts`` and a redacted message that says what to check;
  ``httpx.DecodingError`` (a corrupt gzip body) and every ``httpx.TransportError`` are among them.
- **Redaction.** ``bearer_token`` and any ``Authorization`` header value are registered with
  :func:`mira_env.redact.register_secret`; URLs, messages and ``repr`` never show them.

``httpx`` is imported when the first client is built (extras ``serve``, ``agents`` or ``rewards``).
"""

from __future__ import annotations

import json as jsonlib
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from mira_env.errors import ConfigError, MiraError, describe
from mira_env.validate import check_float, check_int
from mira_env.redact import error_text, redact, register_secret

#: HTTP statuses that are retried (the server may answer differently next time).
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
#: Default cap on a response body.
DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024 * 1024

_ERROR_HINTS = {
    "connect": "is the server running and reachable at this address?",
    "timeout": "the server is slow or stuck; raise timeout_s, or check its load",
    "deadline": "the whole call (retries included) ran past deadline_s; raise deadline_s or check the server",
    "too_large": "raise max_response_bytes / max_request_bytes, or send smaller batches",
    "decode": "the body could not be decoded (corrupt compression or not JSON)",
    "protocol": "the server broke the HTTP protocol (crashed mid-answer?)",
}


class HTTPError(MiraError, RuntimeError):
    """An HTTP call failed for good (after its retries, or at once for a non-retryable answer).

    Attributes: ``kind`` (see the module docstring), ``url`` (redacted), ``status`` (the last HTTP
    status or None), ``attempts`` (requests sent), ``body`` (the start of the last error body, redacted).
    """

    def __init__(self, message: str, *, kind: str, url: str, status: int | None = None, attempts: int = 0,
                 body: str | None = None) -> None:
        super().__init__(redact(message))
        self.kind, self.url, self.status, self.attempts = kind, redact(url), status, attempts
        self.body = None if body is None else redact(body)

    @property
    def retryable(self) -> bool:
        """Whether this kind of failure may go away on a later call (not a 4xx, not too large)."""
        if self.kind == "status":
            return self.status in RETRY_STATUS or (self.status or 0) >= 500
        return self.kind in ("connect", "timeout", "deadline", "protocol")


@dataclass
class Response:
    """A finished response: status, headers (lower-case names) and the whole (bounded) body."""

    status: int
    headers: dict[str, str]
    content: bytes
    url: str
    attempts: int = 1

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        try:
            return jsonlib.loads(self.content)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HTTPError(f"{self.url} answered HTTP {self.status} with a body that is not JSON ({exc}): "
                            f"{self.text[:200]!r}", kind="decode", url=self.url, status=self.status,
                            attempts=self.attempts) from None


@dataclass
class _Attempt:
    response: Response | None = None
    error: str | None = None
    kind: str | None = None
    retry_after: str | None = None
    extra: dict = field(default_factory=dict)


class HTTPClient:
    """A thread-safe HTTP client for one base URL (see the module docstring).

    Args:
        base_url: ``http(s)://host:port[/prefix]``; call paths are appended to it.
        headers: sent with every request (``Authorization`` values are registered as secrets).
        bearer_token: sent as ``Authorization: Bearer <token>``; registered as a secret.
        timeout_s: timeout of one attempt (connect, read, write, pool).
        deadline_s: bound on a whole call with its retries; None = derived from the other settings.
        max_retries: retries after the first attempt (0 = one attempt).
        backoff_s, max_backoff_s: exponential back-off base and cap, in seconds.
        max_response_bytes, max_request_bytes: body bounds (None = unbounded).
        max_connections: connection pool size (the most requests in flight).
        retry_status: HTTP statuses that are retried (default :data:`RETRY_STATUS`).
        sleep: the sleep function (tests pass a fake); jitter: randomise back-off (off for tests).
    """

    def __init__(self, base_url: str, *, headers: Mapping[str, str] | None = None, bearer_token: str | None = None,
                 timeout_s: float = 60.0, deadline_s: float | None = None, max_retries: int = 3,
                 backoff_s: float = 0.5, max_backoff_s: float = 30.0,
                 max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES, max_request_bytes: int | None = None,
                 max_connections: int = 16, retry_status: frozenset[int] | set[int] = RETRY_STATUS,
                 sleep: Callable[[float], None] = time.sleep, jitter: bool = True) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base_url={describe(redact(str(base_url)))} must start with http:// or https://")
        check_float("timeout_s", timeout_s, minimum=0.001)
        check_float("deadline_s", deadline_s, minimum=0.001, allow_none=True)
        check_float("backoff_s", backoff_s, minimum=0.0)
        check_float("max_backoff_s", max_backoff_s, minimum=0.0)
        check_int("max_retries", max_retries, minimum=0)
        check_int("max_connections", max_connections)
        check_int("max_response_bytes", max_response_bytes, allow_none=True)
        check_int("max_request_bytes", max_request_bytes, allow_none=True)
        try:
            import httpx
        except ImportError:
            raise ConfigError("the HTTP client needs httpx: pip install 'mira-env[serve]' (or pip install httpx)") \
                from None
        self.base_url = base_url.rstrip("/")
        self.timeout_s, self.max_retries = float(timeout_s), max_retries
        self.backoff_s, self.max_backoff_s = float(backoff_s), float(max_backoff_s)
        self.deadline_s = float(deadline_s) if deadline_s is not None else (
            self.timeout_s * (max_retries + 1) + min(self.max_backoff_s, self.backoff_s * 2 ** max_retries) * max_retries)
        self.max_response_bytes, self.max_request_bytes = max_response_bytes, max_request_bytes
        self._sleep, self._jitter = sleep, jitter
        self.retry_status = frozenset(retry_status)
        self._rng = random.Random()
        self._lock = threading.Lock()
        self.requests_sent = 0
        sent = dict(headers or {})
        if bearer_token:
            register_secret(bearer_token)
            sent["Authorization"] = f"Bearer {bearer_token}"
        for key, value in sent.items():
            if key.lower() in ("authorization", "proxy-authorization", "x-api-key", "api-key") and value:
                register_secret(str(value))
                parts = str(value).split(None, 1)
                if len(parts) == 2 and len(parts[1]) >= 4:
                    register_secret(parts[1])
        self._client = httpx.Client(headers=sent, timeout=self.timeout_s,
                                    limits=httpx.Limits(max_connections=max_connections,
                                                        max_keepalive_connections=max_connections))

    # ------------------------------------------------------------------ public API
    def get_json(self, path: str, *, timeout_s: float | None = None, retry: bool = True) -> Any:
        """GET ``path`` and return its JSON; :class:`HTTPError` unless the status is 2xx."""
        return self.request("GET", path, timeout_s=timeout_s, retry=retry).json()

    def post_json(self, path: str, body: Any, *, timeout_s: float | None = None, deadline_s: float | None = None,
                  retry: bool = True, headers: Mapping[str, str] | None = None) -> Any:
        """POST ``body`` as JSON to ``path`` and return the JSON answer (2xx only, else :class:`HTTPError`)."""
        return self.request("POST", path, json=body, timeout_s=timeout_s, deadline_s=deadline_s, retry=retry,
                            headers=headers).json()

    def request(self, method: str, path: str, *, json: Any = None, content: bytes | None = None,
                headers: Mapping[str, str] | None = None, timeout_s: float | None = None,
                deadline_s: float | None = None, retry: bool = True, ok_status: Callable[[int], bool] | None = None
                ) -> Response:
        """Send one request (with retries) and return the :class:`Response` of a 2xx answer.

        ``ok_status`` overrides which statuses count as success (default ``200 <= status < 300``).
        """
        url = self._url(path)
        body, send_headers = content, dict(headers or {})
        if json is not None:
            try:
                body = jsonlib.dumps(json, ensure_ascii=False, allow_nan=False).encode("utf-8")
            except (TypeError, ValueError) as exc:
                raise HTTPError(f"request body for {url} is not JSON-serialisable: {exc}", kind="protocol",
                                url=url) from None
            send_headers.setdefault("Content-Type", "application/json")
        if body is not None and self.max_request_bytes is not None and len(body) > self.max_request_bytes:
            raise HTTPError(f"request body for {url} is {len(body)} bytes, over max_request_bytes="
                            f"{self.max_request_bytes}; {_ERROR_HINTS['too_large']}", kind="too_large", url=url)
        is_ok = ok_status or (lambda status: 200 <= status < 300)
        per_try = float(timeout_s) if timeout_s is not None else self.timeout_s
        total = float(deadline_s) if deadline_s is not None else self.deadline_s
        end = time.monotonic() + total
        retries = self.max_retries if retry else 0
        last, attempts, deadline_hit = _Attempt(), 0, False
        for attempt in range(retries + 1):
            left = end - time.monotonic()
            if left <= 0:
                deadline_hit = True
                break
            last = self._attempt(method, url, body, send_headers, min(per_try, left))
            attempts += 1
            if last.response is not None:
                last.response.attempts = attempts
                if is_ok(last.response.status):
                    return last.response
                if last.response.status not in self.retry_status:
                    raise self._status_error(url, last.response, attempts, retried=False)
                last.retry_after = last.response.headers.get("retry-after")
            elif last.kind in ("too_large", "decode"):
                raise HTTPError(f"{method} {url}: {last.error}; {_ERROR_HINTS[last.kind]}", kind=last.kind, url=url,
                                attempts=attempts)
            if attempt == retries:
                break
            delay = self._backoff(attempt, last.retry_after)
            if delay >= end - time.monotonic():
                deadline_hit = True
                break
            self._sleep(delay)
        if last.response is not None and not deadline_hit:
            raise self._status_error(url, last.response, attempts, retried=retries > 0)
        kind = "deadline" if deadline_hit else (last.kind or "deadline")
        reason = last.error or (f"last answer HTTP {last.response.status}" if last.response is not None
                                else "no attempt fitted in the deadline")
        raise HTTPError(f"{method} {url} failed after {attempts} attempt(s) within deadline_s={total:.3g}: {reason}; "
                        f"{_ERROR_HINTS.get(kind, '')}", kind=kind, url=url, attempts=attempts,
                        status=None if last.response is None else last.response.status)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "HTTPClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"HTTPClient({redact(self.base_url)!r}, timeout_s={self.timeout_s}, max_retries={self.max_retries}, "
                f"deadline_s={self.deadline_s:.3g})")

    # ------------------------------------------------------------------ internals
    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return self.base_url + ("" if path.startswith("/") or not path else "/") + path

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        delay = self.backoff_s * (2 ** attempt)
        if self._jitter:
            delay *= 0.5 + 0.5 * self._rng.random()
        if retry_after:
            try:
                delay = float(retry_after)
            except ValueError:
                pass
        return max(0.0, min(self.max_backoff_s, delay))

    def _attempt(self, method: str, url: str, body: bytes | None, headers: dict, timeout: float) -> _Attempt:
        import httpx

        with self._lock:
            self.requests_sent += 1
        try:
            with self._client.stream(method, url, content=body, headers=headers, timeout=timeout) as response:
                declared = response.headers.get("content-length")
                limit = self.max_response_bytes
                if limit is not None and declared and declared.isdigit() and int(declared) > limit:
                    return _Attempt(error=f"response declares {declared} bytes, over max_response_bytes={limit}",
                                    kind="too_large")
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if limit is not None and size > limit:
                        return _Attempt(error=f"response body passed max_response_bytes={limit}", kind="too_large")
                    chunks.append(chunk)
                return _Attempt(response=Response(response.status_code, {k.lower(): v for k, v in
                                                                         response.headers.items()},
                                                  b"".join(chunks), url))
        except httpx.DecodingError as exc:
            return _Attempt(error=f"could not decode the response body ({error_text(exc)})", kind="decode")
        except httpx.TimeoutException as exc:
            return _Attempt(error=f"timed out after {timeout:.3g}s ({error_text(exc)})", kind="timeout")
        except httpx.ConnectError as exc:
            return _Attempt(error=f"could not connect ({error_text(exc)})", kind="connect")
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.NetworkError) as exc:
            return _Attempt(error=f"connection broke ({error_text(exc)})", kind="protocol")
        except httpx.HTTPError as exc:  # every other transport / protocol / URL error
            return _Attempt(error=f"request failed ({error_text(exc)})", kind="protocol")

    def _status_error(self, url: str, response: Response, attempts: int, *, retried: bool) -> HTTPError:
        snippet = response.text[:300]
        detail = snippet
        try:
            data = jsonlib.loads(response.content)
            if isinstance(data, dict) and isinstance(data.get("error"), (str, dict)):
                detail = data["error"] if isinstance(data["error"], str) else jsonlib.dumps(data["error"])[:300]
        except ValueError:
            pass
        hint = {401: "check the auth token", 403: "check the auth token's permissions", 404: "check the URL / path",
                413: "the request is over the server's size limit; send smaller batches",
                422: "the server rejected the request's content"}.get(response.status, "")
        how = f"after {attempts} attempt(s)" if retried else "(not retried)"
        return HTTPError(f"{url} answered HTTP {response.status} {how}: {detail!r}" + (f"; {hint}" if hint else ""),
                         kind="status", url=url, status=response.status, attempts=attempts, body=snippet)


__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "HTTPClient", "HTTPError", "RETRY_STATUS", "Response"]
