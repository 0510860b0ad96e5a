"""``RemoteEditor``: an editor service (``mira serve editor``) behind the ``Editor`` protocol.

Editor spec ``remote:http://host:port`` (several servers: ``remote:http://a:8100,http://b:8100``) works
wherever an editor spec does: ``EditEnv(editor=...)``, ``mira run`` / ``mira eval --editor``, GRPO.

- At construction it reads ``/info`` and checks the server speaks our API major version; ``info`` mirrors
  the served editor (name ``remote:<name>``, resolution, determinism).
- ``edit`` splits a batch into up to ``concurrency`` chunks (each at most the server's ``max_items`` and
  ``chunk_size``) and sends them concurrently: behind Ray Serve the proxy spreads them over replicas,
  whose dynamic batching merges them again with other clients' edits. With several URLs, chunks are
  dealt round-robin over them.
- Faults (timeout, 5xx, connection refused or reset, a replica dying mid-batch) are retried with
  exponential back-off by :class:`mira_env.http.HTTPClient`, then on the next URL; an item whose every
  try failed comes back as an :class:`~mira_env.errors.EditorError` instance in its slot (the
  environment records it for that item and carries on). Edits are pure functions of (image, instruction,
  seed, settings), so a retried chunk can never apply an edit twice: each item gets exactly one result.
- ``strict=True`` raises the first item error instead.
- Images travel as ``image_encoding="raw"`` RGB bytes by default (lossless and ~10 ms per 1024^2 image; PNG
  costs ~0.1-0.5 s of CPU per 1024^2 photo on each side, but is 5-100x smaller: use ``"png"`` over slow links).
  Chunks are also kept under the server's ``max_request_bytes``.
- ``body_format="auto"`` (default) sends the binary body (:mod:`mira_env.serve.frames`: a JSON header and the
  images' bytes, no base64) to servers whose ``/info`` lists it (API >= 1.2), JSON to older ones.
- Every request carries a ``request_id`` (``<client id>-<n>``; a retry of a request keeps its id) that the
  server echoes and counts; ``request_log`` keeps ``(request_id, items, answered)`` of the recent requests,
  so a test or an operator can check that every request got exactly one answer.
- The auth token comes from ``token`` or the environment variable ``token_env`` (``MIRA_EDITOR_TOKEN``)
  and is never shown in errors, logs or ``repr``.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from PIL import Image

from mira_env.editors.base import EditorInfo, check_batch
from mira_env.errors import ConfigError, EditorError, describe

DEFAULT_TOKEN_ENV = "MIRA_EDITOR_TOKEN"
BODY_FORMAT_CHOICES = ("auto", "binary", "json")
#: requests a ``RemoteEditor`` remembers in ``request_log``
REQUEST_LOG_SIZE = 100_000


def parse_urls(url: str | Sequence[str]) -> list[str]:
    """``url`` (a URL, comma-separated URLs, or a list) as a list of base URLs without trailing ``/``."""
    items = url.split(",") if isinstance(url, str) else list(url)
    urls = [str(u).strip().rstrip("/") for u in items if str(u).strip()]
    if not urls:
        raise ConfigError(f"RemoteEditor url={describe(url)}: give the service address, e.g. http://127.0.0.1:8100")
    for item in urls:
        if not item.startswith(("http://", "https://")):
            raise ConfigError(f"RemoteEditor url {item!r} must start with http:// or https:// (e.g. "
                              "remote:http://127.0.0.1:8100)")
    return urls


class RemoteEditor:
    """An editor served over HTTP (see the module docstring).

    Args:
        url: base URL of the service, a comma-separated list, or a list of URLs.
        timeout_s: timeout of one HTTP attempt (a large diffusion batch can take minutes).
        max_retries: retries per URL after the first attempt.
        concurrency: chunks in flight at once per ``edit`` call.
        chunk_size: most items per request (default: the server's ``max_items``).
        token / token_env: auth token, or the environment variable that holds it.
        settings: per-call settings sent with every request (``edit(..., **settings)`` adds to them).
        backoff_s, max_backoff_s: retry back-off.
        deadline_s: bound on one chunk's request with its retries (default from the other settings).
        strict: raise on any failed item instead of returning per-item errors.
        image_encoding: ``"raw"`` (default) or ``"png"`` (see the module docstring).
        body_format: ``"auto"`` (default), ``"binary"`` or ``"json"`` (see the module docstring).
    """

    def __init__(self, url: str | Sequence[str], *, timeout_s: float = 600.0, max_retries: int = 3,
                 concurrency: int = 4, chunk_size: int | None = None, token: str | None = None,
                 token_env: str | None = DEFAULT_TOKEN_ENV, settings: dict | None = None, backoff_s: float = 0.5,
                 max_backoff_s: float = 10.0, deadline_s: float | None = None, strict: bool = False,
                 info_timeout_s: float = 30.0, image_encoding: str = "raw", body_format: str = "auto") -> None:
        from mira_env.editors.state import IMAGE_ENCODINGS
        from mira_env.http import HTTPClient
        from mira_env.serve.protocol import minor
        from mira_env.validate import check_choice, check_int

        self.urls = parse_urls(url)
        check_int("RemoteEditor concurrency", concurrency)
        check_int("RemoteEditor chunk_size", chunk_size, allow_none=True)
        if settings is not None and not isinstance(settings, dict):
            raise ConfigError(f"RemoteEditor settings={describe(settings)} must be a dict")
        check_choice("RemoteEditor image_encoding", image_encoding, IMAGE_ENCODINGS)
        check_choice("RemoteEditor body_format", body_format, BODY_FORMAT_CHOICES)
        if token is None and token_env:
            token = os.environ.get(token_env) or None
        self.concurrency, self.strict = concurrency, bool(strict)
        self.settings = dict(settings or {})
        self._clients = [HTTPClient(u, bearer_token=token, timeout_s=timeout_s, max_retries=max_retries,
                                    backoff_s=backoff_s, max_backoff_s=max_backoff_s, deadline_s=deadline_s,
                                    max_connections=max(concurrency, 4)) for u in self.urls]
        self.server_info = self._read_info(token, info_timeout_s)
        limits = self.server_info.get("limits") or {}
        server_max = int(limits.get("max_items") or 64)
        self.chunk_size = min(chunk_size or server_max, server_max)
        self.max_request_bytes = int(limits.get("max_request_bytes") or 256 * 1024 * 1024)
        # a server older than API 1.1 knows PNG only; before 1.2, JSON bodies only
        self.image_encoding = image_encoding if minor(self.server_info.get("api_version", "1.0")) >= 1 else "png"
        formats = self.server_info.get("body_formats") or ["json"]
        if body_format == "binary" and "binary" not in formats:
            raise ConfigError(f"RemoteEditor body_format='binary': {self.urls[0]} reads only {formats} bodies (API "
                              f"{self.server_info.get('api_version')}); use body_format='auto' or upgrade the server")
        self.body_format = "binary" if body_format in ("auto", "binary") and "binary" in formats else "json"
        editor = self.server_info.get("editor") or {}
        resolution = editor.get("resolution")
        self.info = EditorInfo(name=f"remote:{editor.get('name', 'editor')}",
                               resolution=tuple(resolution) if resolution else None,
                               deterministic=bool(editor.get("deterministic", True)),
                               extras={"urls": list(self.urls), "server": editor.get("name"),
                                       "settings": editor.get("settings"), "api_version":
                                           self.server_info.get("api_version")})
        self._lock = threading.Lock()
        self.calls = 0  # edit() calls
        self.requests = 0  # chunk requests that got an answer
        self.failovers = 0  # chunks moved to another URL after one failed for good
        self.failed_items = 0
        self.client_id = f"{os.getpid():x}-{uuid.uuid4().hex[:8]}"
        self._sequence = itertools.count()
        #: ``{"request_id", "items", "answered"}`` of the most recent requests (one entry per chunk sent)
        self.request_log: deque[dict] = deque(maxlen=REQUEST_LOG_SIZE)

    # ------------------------------------------------------------------ setup
    def _read_info(self, token: str | None, timeout_s: float) -> dict:
        from mira_env.http import HTTPError
        from mira_env.serve.protocol import INFO_PATH, check_compatible

        errors = []
        for url, client in zip(self.urls, self._clients):
            try:
                info = client.get_json(INFO_PATH, timeout_s=timeout_s)
            except HTTPError as exc:
                if exc.status == 401:
                    raise EditorError(f"{url} refused the auth token ({exc}); set {DEFAULT_TOKEN_ENV} or pass "
                                      "token=...") from None
                errors.append(str(exc))
                continue
            check_compatible(info, url)
            return info
        raise EditorError("no editor service answered /info: " + " | ".join(errors)
                          + "; start one with `mira serve editor --editor SPEC` and check the URL")

    # ------------------------------------------------------------------ protocol
    def edit(self, images: Sequence[Image.Image], instructions: Sequence[str], seeds: Sequence[int],
             **settings: Any) -> list[Image.Image | EditorError]:
        check_batch(images, instructions, seeds)
        with self._lock:
            self.calls += 1
        count = len(images)
        if count == 0:
            return []
        merged = {**self.settings, **settings}
        chunks = self._chunks(count, max(image.width * image.height for image in images))
        outputs: list[Any] = [None] * count

        def run(position: int, bounds: tuple[int, int]) -> None:
            lo, hi = bounds
            results = self._send(position, images[lo:hi], instructions[lo:hi], seeds[lo:hi], merged)
            outputs[lo:hi] = results

        if len(chunks) == 1:
            run(0, chunks[0])
        else:
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(chunks))) as pool:
                list(pool.map(run, range(len(chunks)), chunks))
        failed = [o for o in outputs if isinstance(o, EditorError)]
        with self._lock:
            self.failed_items += len(failed)
        if failed and self.strict:
            raise failed[0]
        return outputs

    def _chunks(self, count: int, max_pixels: int) -> list[tuple[int, int]]:
        per_image = max_pixels * 4 + 1024  # base64 of RGB bytes (PNG is smaller): an upper bound per item
        by_bytes = max(1, int(self.max_request_bytes * 0.9) // per_image)
        size_cap = min(self.chunk_size, by_bytes)
        pieces = max(math.ceil(count / size_cap), min(count, self.concurrency))
        size = math.ceil(count / pieces)
        return [(lo, min(lo + size, count)) for lo in range(0, count, size)]

    def _send(self, position: int, images, instructions, seeds, settings) -> list[Image.Image | EditorError]:
        from mira_env.http import HTTPError
        from mira_env.serve.frames import BINARY_CONTENT_TYPE, unpack
        from mira_env.serve.protocol import EDIT_PATH, decode_results, encode_request, encode_request_binary

        request_id = f"{self.client_id}-{next(self._sequence)}"
        entry = {"request_id": request_id, "items": len(images), "answered": False}
        with self._lock:
            self.request_log.append(entry)
        binary = self.body_format == "binary"
        if binary:
            content = encode_request_binary(images, instructions, seeds, settings, self.image_encoding, request_id)
        else:
            body = encode_request(images, instructions, seeds, settings, self.image_encoding, request_id)
        last = ""
        order = [(position + k) % len(self.urls) for k in range(len(self.urls))]
        for attempt, index in enumerate(order):
            try:
                if binary:
                    response = self._clients[index].request("POST", EDIT_PATH, content=content,
                                                            headers={"Content-Type": BINARY_CONTENT_TYPE})
                else:
                    answer = self._clients[index].post_json(EDIT_PATH, body)
            except HTTPError as exc:
                last = f"{self.urls[index]}: {exc}"
                if not exc.retryable:
                    break
                if attempt + 1 < len(order):
                    with self._lock:
                        self.failovers += 1
                continue
            with self._lock:
                self.requests += 1
                entry["answered"] = True
            try:
                blobs = None
                if binary:
                    if response.headers.get("content-type", "").startswith(BINARY_CONTENT_TYPE):
                        answer, blobs = unpack(response.content)
                    else:
                        answer = response.json()
                return decode_results(answer, len(images), blobs)
            except (EditorError, ValueError, HTTPError) as exc:
                last = f"{self.urls[index]}: {exc}"
                break
        error = EditorError(f"remote edit failed: {last}")
        return [EditorError(str(error)) for _ in images]

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def __repr__(self) -> str:
        return f"RemoteEditor({','.join(self.urls)!r}, editor={self.info.name!r})"


__all__ = ["BODY_FORMAT_CHOICES", "DEFAULT_TOKEN_ENV", "RemoteEditor", "parse_urls"]
