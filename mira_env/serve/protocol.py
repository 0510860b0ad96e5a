"""The editor service's versioned HTTP JSON API (shared by the server and :class:`RemoteEditor`).

API version :data:`API_VERSION` (``"MAJOR.MINOR"``): a client talks to any server with the same MAJOR
(a MINOR bump only adds optional fields). Every route but ``/healthz`` needs ``Authorization: Bearer
<token>`` when the server was started with a token.

``GET /healthz`` -> ``{"status": "ok"}`` (200 once the editor is loaded).

``GET /info`` -> ::

    {"api_version": "1.2", "service": "mira-editor", "mira_env_version": "0.1.0",
     "editor": {"name": "shapes", "max_batch": 1000000, "resolution": null, "deterministic": true,
                "extras": {...}, "settings": ["num_inference_steps", ...] | "any" | []},
     "limits": {"max_items": 64, "max_pixels": 4194304, "max_request_bytes": 268435456},
     "batching": {"max_batch": 8, "batch_wait_ms": 10.0}, "auth": true,
     "body_formats": ["json", "binary"]}                # (1.2) the request bodies it reads

``POST /v1/edit`` with ::

    {"api_version": "1.2",
     "request_id": "3f2a9c-17",                         # optional (1.2): echoed in the answer, counted by the server
     "items": [{"image": {"png_base64": "...", "state": <editor state or null>},
                "instruction": "make the circle red", "seed": 123}, ...],
     "settings": {"num_inference_steps": 28},          # optional, per call
     "image_encoding": "png"}                          # optional (1.1): "png" (default) or "raw"

answers 200 with one result per item, in order::

    {"api_version": "1.2", "request_id": "3f2a9c-17",
     "results": [{"ok": true, "image": {"png_base64": "...", "state": ...}, "status": {...} | null},
                 {"ok": false, "error": "EditorError: ..."}]}

``image_encoding`` (since 1.1) says how the answer's images are encoded: ``"png"`` or ``"raw"`` (RGB bytes as
``{"raw_base64", "width", "height", "state"}``: 4 MB per 1024^2 image but no PNG CPU cost, which is ~0.1-0.5 s
per 1024^2 photo); request images may use either, whatever the field says.

The binary body (since 1.2, content type ``application/x-mira-frames``, :mod:`mira_env.serve.frames`) carries
the same document as a small JSON header followed by the images' bytes (no base64, no image text to parse);
a binary request gets a binary answer. The JSON body stays accepted.

A whole request that is malformed answers 400, a bad token 401, one over the bounds 413, a server that
is not ready 503; the body is ``{"error": "<what is wrong and how to fix it>"}``. Images travel as RGB
PNG (lossless, so a remote edit is pixel-identical to an in-process one) with the editor's per-image
state (:mod:`mira_env.editors.state`); ``status`` is the editor's ``image.info[EDIT_STATUS_KEY]``.
Per-call ``settings`` become keyword arguments of the editor's ``edit(images, instructions, seeds,
**settings)``; the server refuses settings its editor does not take.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from PIL import Image

from mira_env.editors.base import EDIT_STATUS_KEY, edit_status
from mira_env.editors.state import IMAGE_ENCODINGS, from_payload, to_payload
from mira_env.errors import EditorError, MiraError, choice_message, describe

API_VERSION = "1.2"
HEALTH_PATH = "/healthz"
INFO_PATH = "/info"
EDIT_PATH = "/v1/edit"
SERVICE_NAME = "mira-editor"


class RequestError(MiraError, ValueError):
    """A request the server refuses as a whole; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def major(version: str) -> str:
    return str(version).split(".", 1)[0]


def minor(version: str) -> int:
    parts = str(version).split(".")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def check_compatible(info: Mapping[str, Any], url: str = "the server") -> None:
    """Raise :class:`EditorError` unless ``info`` (a ``/info`` answer) is an editor service of our major API."""
    if not isinstance(info, Mapping) or info.get("service") != SERVICE_NAME:
        raise EditorError(f"{url} is not a mira editor service (/info answered {describe(info)}); start one with "
                          "`mira serve editor --editor SPEC`")
    version = str(info.get("api_version"))
    if major(version) != major(API_VERSION):
        raise EditorError(f"{url} speaks editor API {version}, this client speaks {API_VERSION} (major versions "
                          "differ); install the same mira-env version on both sides")


@dataclass(frozen=True)
class Limits:
    """Bounds the server enforces on one request."""

    max_items: int = 64
    max_pixels: int = 4096 * 4096
    max_request_bytes: int = 256 * 1024 * 1024

    def to_json(self) -> dict:
        return {"max_items": self.max_items, "max_pixels": self.max_pixels,
                "max_request_bytes": self.max_request_bytes}


def settings_key(settings: Mapping[str, Any]) -> str:
    """A canonical string of per-call settings (for grouping a batch and for cache keys)."""
    try:
        return json.dumps(dict(settings), sort_keys=True, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise EditorError(f"editor settings {describe(settings)} are not JSON-serialisable ({exc})") from None


@dataclass
class EditItem:
    """One edit of a request, decoded."""

    image: Image.Image
    instruction: str
    seed: int
    settings: dict = field(default_factory=dict)
    encoding: str = "png"  # how its result image is encoded
    body_format: str = "json"  # the answer's body: "json" or "binary" (as the request's)

    @property
    def group(self) -> tuple:
        """Items that can share one editor call: same image size and same settings."""
        return (self.image.size, settings_key(self.settings))


# ---------------------------------------------------------------------- client side
def encode_request(images: Sequence[Image.Image], instructions: Sequence[str], seeds: Sequence[int],
                   settings: Mapping[str, Any] | None = None, encoding: str = "png",
                   request_id: str | None = None) -> dict:
    body: dict[str, Any] = {"api_version": API_VERSION,
                            "items": [{"image": to_payload(image, encoding), "instruction": text, "seed": int(seed)}
                                      for image, text, seed in zip(images, instructions, seeds)]}
    if encoding != "png":
        body["image_encoding"] = encoding
    if request_id is not None:
        body["request_id"] = str(request_id)
    if settings:
        settings_key(settings)
        body["settings"] = dict(settings)
    return body


def encode_request_binary(images: Sequence[Image.Image], instructions: Sequence[str], seeds: Sequence[int],
                          settings: Mapping[str, Any] | None = None, encoding: str = "raw",
                          request_id: str | None = None) -> bytes:
    """The binary body (:mod:`mira_env.serve.frames`) of the request :func:`encode_request` describes."""
    from mira_env.serve.frames import image_blob, pack

    body: dict[str, Any] = {"api_version": API_VERSION, "image_encoding": encoding, "items": []}
    blobs = []
    for image, text, seed in zip(images, instructions, seeds):
        meta, data = image_blob(image, encoding)
        meta["blob"] = len(blobs)
        blobs.append(data)
        body["items"].append({"image": meta, "instruction": text, "seed": int(seed)})
    if request_id is not None:
        body["request_id"] = str(request_id)
    if settings:
        settings_key(settings)
        body["settings"] = dict(settings)
    return pack(body, blobs)


def decode_results(body: Any, count: int, blobs: Sequence[Any] | None = None) -> list[Image.Image | EditorError]:
    """The images (or per-item :class:`EditorError`) of an ``/v1/edit`` answer for ``count`` items (``blobs``: the
    answer was a binary body, :func:`mira_env.serve.frames.unpack`)."""
    results = body.get("results") if isinstance(body, Mapping) else None
    if not isinstance(results, list) or len(results) != count:
        got = len(results) if isinstance(results, list) else describe(body)
        raise EditorError(f"editor service answered {got} results for {count} items")
    out: list[Image.Image | EditorError] = []
    for index, result in enumerate(results):
        if not isinstance(result, Mapping):
            out.append(EditorError(f"editor service result {index} is {describe(result)}, not an object"))
        elif result.get("ok"):
            try:
                image = from_payload(result.get("image")) if blobs is None else _blob_image(result.get("image"), blobs)
            except EditorError as exc:
                out.append(EditorError(f"editor service result {index}: {exc}"))
                continue
            if isinstance(result.get("status"), dict):
                image.info[EDIT_STATUS_KEY] = dict(result["status"])
            out.append(image)
        else:
            out.append(EditorError(f"remote edit failed: {result.get('error') or 'no reason given'}"))
    return out


# ---------------------------------------------------------------------- server side
def _blob_image(meta: Any, blobs: Sequence[Any], max_pixels: int | None = None) -> Image.Image:
    from mira_env.serve.frames import blob_image

    return blob_image(meta, blobs, max_pixels=max_pixels)


def request_id_of(body: Any) -> str | None:
    """The optional ``request_id`` of a request body; :class:`RequestError` 400 when it is not a short string."""
    value = body.get("request_id") if isinstance(body, Mapping) else None
    if value is not None and (not isinstance(value, str) or not 0 < len(value) <= 200):
        raise RequestError(400, f"request_id must be a string of 1-200 characters, got {describe(value)}")
    return value


def decode_request(body: Any, limits: Limits, blobs: Sequence[Any] | None = None) -> list[EditItem]:
    """The items of a ``/v1/edit`` body; :class:`RequestError` (400 / 413) for a bad or oversized request.

    ``blobs``: the body was binary (:func:`mira_env.serve.frames.unpack`); its images reference these blobs.
    """
    if not isinstance(body, Mapping):
        raise RequestError(400, f"the body must be a JSON object with 'items', got {describe(body)}")
    version = body.get("api_version", API_VERSION)
    if major(str(version)) != major(API_VERSION):
        raise RequestError(400, f"api_version {version!r} is not supported; this server speaks {API_VERSION}")
    items = body.get("items")
    if not isinstance(items, list):
        raise RequestError(400, f"'items' must be a list of {{image, instruction, seed}}, got {describe(items)}")
    if len(items) > limits.max_items:
        raise RequestError(413, f"{len(items)} items in one request, over the server's max_items="
                                f"{limits.max_items}; split the batch (RemoteEditor does this from /info)")
    settings = body.get("settings") or {}
    if not isinstance(settings, Mapping):
        raise RequestError(400, f"'settings' must be an object, got {describe(settings)}")
    encoding = body.get("image_encoding", "png")
    if encoding not in IMAGE_ENCODINGS:
        raise RequestError(400, choice_message("image_encoding", encoding, IMAGE_ENCODINGS))
    decoded = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise RequestError(400, f"items[{index}] must be an object, got {describe(item)}")
        text, seed = item.get("instruction"), item.get("seed")
        if not isinstance(text, str):
            raise RequestError(400, f"items[{index}].instruction must be a string, got {describe(text)}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise RequestError(400, f"items[{index}].seed must be an int, got {describe(seed)}")
        try:
            image = (from_payload(item.get("image"), max_pixels=limits.max_pixels) if blobs is None
                     else _blob_image(item.get("image"), blobs, limits.max_pixels))
        except EditorError as exc:
            status = 413 if "over the limit" in str(exc) else 400
            raise RequestError(status, f"items[{index}].image: {exc}") from None
        decoded.append(EditItem(image, text, seed, dict(settings), encoding, "json" if blobs is None else "binary"))
    return decoded


def encode_result(output: Image.Image | BaseException, encoding: str = "png", body_format: str = "json") -> dict:
    """One entry of ``results``: the edited image with state and status, or the error.

    ``body_format="binary"``: the image's bytes wait under ``image["_bytes"]`` for
    :func:`mira_env.serve.frames.move_images_to_blobs`.
    """
    if isinstance(output, BaseException):
        return {"ok": False, "error": f"{type(output).__name__}: {output}"}
    if not isinstance(output, Image.Image):
        return {"ok": False, "error": f"EditorError: editor output is {type(output).__name__}, not a PIL image"}
    try:
        if body_format == "binary":
            from mira_env.serve.frames import image_blob

            meta, data = image_blob(output, encoding)
            return {"ok": True, "image": {**meta, "_bytes": data}, "status": edit_status(output)}
        return {"ok": True, "image": to_payload(output, encoding), "status": edit_status(output)}
    except EditorError as exc:
        return {"ok": False, "error": f"EditorError: {exc}"}


__all__ = ["API_VERSION", "minor", "EDIT_PATH", "HEALTH_PATH", "INFO_PATH", "SERVICE_NAME", "EditItem", "Limits",
           "RequestError", "check_compatible", "decode_request", "decode_results", "encode_request",
           "encode_request_binary", "encode_result", "request_id_of", "settings_key"]
