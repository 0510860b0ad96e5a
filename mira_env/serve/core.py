"""``EditService``: what every editor server does with a request, independent of the web framework.

The Ray Serve deployment (:mod:`mira_env.serve.ray_app`) and the single-process threaded server
(:mod:`mira_env.serve.threaded`) both hold one ``EditService`` per replica: it builds the editor, checks
the auth token, decodes and bounds requests, runs a (dynamic) batch as one editor call per group of
items with the same image size and settings, and encodes the answers. An editor failure fails only the
items of its group, each with the error as data; the service itself never goes down for one bad batch.
"""

from __future__ import annotations

import hmac
import inspect
import json
import threading
import time
from collections import OrderedDict, defaultdict
from typing import Any, Callable, Sequence

from mira_env.editors.base import Editor
from mira_env.errors import ConfigError, describe
from mira_env.serve.frames import BINARY_CONTENT_TYPE, BODY_FORMATS, move_images_to_blobs, unpack
from mira_env.serve.protocol import (
    API_VERSION,
    SERVICE_NAME,
    EditItem,
    Limits,
    RequestError,
    decode_request,
    encode_result,
    request_id_of,
)

#: request ids whose answers an ``EditService`` remembers (the oldest are forgotten first)
ANSWER_LOG_SIZE = 100_000


def accepted_settings(editor: Editor) -> list[str] | str:
    """Names of the keyword arguments ``editor.edit`` takes after (images, instructions, seeds).

    ``"any"`` when it takes ``**kwargs``; ``[]`` for the plain protocol (no per-call settings).
    """
    try:
        parameters = list(inspect.signature(editor.edit).parameters.values())
    except (TypeError, ValueError):
        return []
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return "any"
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    rest = positional[3:] + [p for p in parameters if p.kind is p.KEYWORD_ONLY]
    return [p.name for p in rest]


def check_bearer(header: str | None, token: str | None, hint: str = "") -> None:
    """:class:`RequestError` 401 unless ``header`` is ``Bearer <token>`` (no check when ``token`` is None)."""
    if token is None:
        return
    expected = f"Bearer {token}"
    if not header or not hmac.compare_digest(header.encode(), expected.encode()):
        raise RequestError(401, "missing or wrong auth token: send 'Authorization: Bearer <token>'"
                                + (f" ({hint})" if hint else ""))


class EditService:
    """One replica's request handling (see the module docstring).

    Args:
        editor: the editor (built once per replica).
        limits: request bounds.
        auth_token: when set, every route but ``/healthz`` needs ``Authorization: Bearer <token>``.
        batching: ``{"max_batch": .., "batch_wait_ms": ..}`` reported by ``/info``.
    """

    def __init__(self, editor: Editor, limits: Limits | None = None, auth_token: str | None = None,
                 batching: dict | None = None) -> None:
        if not hasattr(editor, "edit"):
            raise ConfigError(f"editor={describe(editor)} has no edit(images, instructions, seeds) method")
        self.editor = editor
        self.limits = limits or Limits()
        self.auth_token = auth_token or None
        self.batching = dict(batching or {})
        self.settings = accepted_settings(editor)
        self._lock = threading.Lock()  # editors are not thread-safe: one editor call at a time
        self._log_lock = threading.Lock()
        self.calls = 0  # editor.edit calls
        self.items = 0  # items edited
        self.batch_sizes: list[int] = []
        self.requests = 0  # /v1/edit requests answered (200)
        # request id -> item count of each answer given for it (a retried request that reached the server twice
        # shows two entries; a client checks "exactly one answer per request" against it)
        self.answers: OrderedDict[str, list[int]] = OrderedDict()

    # ------------------------------------------------------------------ routes
    def info(self) -> dict:
        from mira_env import __version__

        info = self.editor.info
        return {"api_version": API_VERSION, "service": SERVICE_NAME, "mira_env_version": __version__,
                "editor": {"name": info.name, "max_batch": info.max_batch,
                           "resolution": list(info.resolution) if info.resolution else None,
                           "deterministic": info.deterministic, "extras": _jsonable(info.extras),
                           "settings": self.settings},
                "limits": self.limits.to_json(), "batching": self.batching, "auth": self.auth_token is not None,
                "body_formats": list(BODY_FORMATS)}

    def check_auth(self, header: str | None) -> None:
        """:class:`RequestError` 401 unless ``header`` is ``Bearer <token>`` (when a token is set)."""
        check_bearer(header, self.auth_token, "RemoteEditor(..., token=...) or MIRA_EDITOR_TOKEN")

    def parse(self, raw: bytes, content_length: str | None = None) -> list[EditItem]:
        """Decode one JSON ``/v1/edit`` body; :class:`RequestError` for a bad or oversized request."""
        return self.parse_request(raw, content_length)[0]

    def parse_request(self, raw: bytes, content_length: str | None = None,
                      content_type: str | None = None) -> tuple[list[EditItem], str | None, str]:
        """``(items, request_id, body_format)`` of one ``/v1/edit`` body, JSON or binary (by ``content_type``)."""
        limit = self.limits.max_request_bytes
        if content_length and content_length.isdigit() and int(content_length) > limit:
            raise RequestError(413, f"request body of {content_length} bytes is over max_request_bytes={limit}; "
                                    "send smaller batches or start the server with a larger --max_request_mb")
        if len(raw) > limit:
            raise RequestError(413, f"request body of {len(raw)} bytes is over max_request_bytes={limit}")
        blobs = None
        if (content_type or "").split(";", 1)[0].strip().lower() == BINARY_CONTENT_TYPE:
            try:
                body, blobs = unpack(raw)
            except ValueError as exc:
                raise RequestError(400, f"malformed binary body ({exc})") from None
        else:
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                raise RequestError(400, f"the body is not JSON ({exc})") from None
        request_id = request_id_of(body)
        items = decode_request(body, self.limits, blobs)
        if items and items[0].settings:
            self.check_settings(items[0].settings)
        return items, request_id, "json" if blobs is None else "binary"

    def answer(self, results: list[dict], request_id: str | None, body_format: str,
               elapsed_s: float | None = None) -> dict | bytes:
        """The 200 answer to a request (binary when the request was), recorded under its ``request_id``."""
        with self._log_lock:
            self.requests += 1
            if request_id is not None:
                self.answers.setdefault(request_id, []).append(len(results))
                self.answers.move_to_end(request_id)
                while len(self.answers) > ANSWER_LOG_SIZE:
                    self.answers.popitem(last=False)
        body: dict[str, Any] = {"api_version": API_VERSION, "results": results}
        if request_id is not None:
            body["request_id"] = request_id
        if elapsed_s is not None:
            body["elapsed_s"] = elapsed_s
        return move_images_to_blobs(body) if body_format == "binary" else body

    def check_settings(self, settings: dict) -> None:
        if self.settings == "any":
            return
        unknown = sorted(set(settings) - set(self.settings))
        if unknown:
            takes = ", ".join(self.settings) if self.settings else "none"
            raise RequestError(400, f"editor {self.editor.info.name!r} takes no per-call settings {unknown}; "
                                    f"its edit() accepts: {takes}")

    # ------------------------------------------------------------------ batches
    def run_batch(self, items: Sequence[EditItem]) -> list[dict]:
        """Encoded results for ``items`` (possibly from several requests): one editor call per group."""
        outputs: list[Any] = [None] * len(items)
        groups: dict[tuple, list[int]] = defaultdict(list)
        for index, item in enumerate(items):
            groups[item.group].append(index)
        for indices in groups.values():
            chunk = [items[i] for i in indices]
            for index, output in zip(indices, self._edit_group(chunk)):
                outputs[index] = output
        return [encode_result(output, item.encoding, item.body_format) for output, item in zip(outputs, items)]

    def _edit_group(self, chunk: list[EditItem]) -> list[Any]:
        images = [item.image for item in chunk]
        texts = [item.instruction for item in chunk]
        seeds = [item.seed for item in chunk]
        settings = chunk[0].settings
        with self._lock:
            self.calls += 1
            self.items += len(chunk)
            self.batch_sizes.append(len(chunk))
            try:
                outputs = self.editor.edit(images, texts, seeds, **settings) if settings else \
                    self.editor.edit(images, texts, seeds)
            except Exception as exc:  # noqa: BLE001 - the group's items fail with the reason; the replica lives
                return [exc] * len(chunk)
        if not isinstance(outputs, (list, tuple)) or len(outputs) != len(chunk):
            got = len(outputs) if isinstance(outputs, (list, tuple)) else describe(outputs)
            return [RuntimeError(f"editor returned {got} outputs for {len(chunk)} inputs")] * len(chunk)
        return list(outputs)

    def handle(self, method: str, path: str, headers: dict[str, str], raw: bytes,
               run: Callable[[list[EditItem]], list[dict]] | None = None) -> tuple[int, dict | bytes]:
        """Route one HTTP request for a synchronous server: ``(status, JSON body or binary body bytes)``."""
        try:
            if path == "/healthz":
                return 200, {"status": "ok"}
            self.check_auth(headers.get("authorization"))
            if path == "/info" and method == "GET":
                return 200, self.info()
            if path == "/v1/edit" and method == "POST":
                items, request_id, body_format = self.parse_request(raw, headers.get("content-length"),
                                                                    headers.get("content-type"))
                start = time.perf_counter()
                results = (run or self.run_batch)(items)
                return 200, self.answer(results, request_id, body_format, time.perf_counter() - start)
            return 404, {"error": f"no route {method} {path}; routes: GET /healthz, GET /info, POST /v1/edit"}
        except RequestError as exc:
            return exc.status, {"error": str(exc)}


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


__all__ = ["EditService", "accepted_settings", "check_bearer"]
