"""How an editor's per-image world state travels with an image, wherever the image goes.

A stateful editor (the shapes world keeps its scene graph) stores JSON-like state in
``image.info[STATE_KEY]``. ``PIL.Image.info`` survives ``Image.copy()`` but not a PNG file, a
``datasets`` image column or an HTTP request. This module is the one place that says how the state
rides along outside a PIL object:

- a ``datasets`` row / JSONL record: the image in its own column, the state as a JSON string in the
  column :data:`STATE_COLUMN` (:func:`encode_state` / :func:`decode_state`);
- a JSON payload (the editor service's wire format): :func:`to_payload` / :func:`from_payload`, a dict
  ``{"png_base64": ..., "state": <json-like or null>}`` (or ``{"raw_base64", "width", "height", "state"}``:
  the same pixels without PNG's CPU cost).

Images without state round-trip with ``state`` None; stateless editors never see a difference.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from typing import Any, Mapping

from PIL import Image

from mira_env.editors.base import STATE_KEY
from mira_env.errors import EditorError, describe
from mira_env.validate import check_choice, check_int

#: Column of a ``datasets`` table / key of a JSONL record holding the JSON-encoded editor state.
STATE_COLUMN = "editor_state"


def image_state(image: Image.Image) -> Any:
    """The editor state carried by ``image`` (``image.info[STATE_KEY]``), or None."""
    return image.info.get(STATE_KEY)


def with_state(image: Image.Image, state: Any) -> Image.Image:
    """A copy of ``image`` carrying ``state`` (None removes any state)."""
    out = image.copy()
    if state is None:
        out.info.pop(STATE_KEY, None)
    else:
        out.info[STATE_KEY] = state
    return out


def encode_state(state: Any) -> str | None:
    """``state`` as a JSON string for a table column (None stays None); refuses non-JSON values."""
    if state is None:
        return None
    try:
        return json.dumps(state, sort_keys=True, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise EditorError(f"editor state {describe(state)} is not JSON-serialisable ({exc}); editor state must be "
                          "made of dicts, lists, str, int, float, bool and None") from None


def decode_state(text: str | None) -> Any:
    """The state encoded by :func:`encode_state` (None or ``""`` -> None)."""
    if text is None or text == "":
        return None
    if not isinstance(text, str):
        raise EditorError(f"editor state column holds {describe(text)}; expected the JSON string written by "
                          "mira_env.editors.state.encode_state")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise EditorError(f"editor state {text[:80]!r} is not valid JSON ({exc.msg} at {exc.pos})") from None


def attach_column_state(image: Image.Image, text: str | None) -> Image.Image:
    """``image`` carrying the state decoded from a :data:`STATE_COLUMN` value (unchanged when None)."""
    state = decode_state(text)
    return image if state is None else with_state(image, state)


#: How :func:`to_payload` encodes pixels: ``"png"`` (small; PNG encoding of a 1024^2 photo costs ~0.1-0.5 s of
#: CPU) or ``"raw"`` (the RGB bytes, 4 MB at 1024^2, ~10 ms). Both are lossless.
IMAGE_ENCODINGS = ("png", "raw")


def encode_image(image: Image.Image, encoding: str = "png", *, compress_level: int = 6) -> tuple[dict[str, Any], bytes]:
    """``(meta, data)`` of ``image`` for the wire: an RGB PNG (``meta`` = ``{"state"}``) or, ``encoding="raw"``, the
    RGB bytes (``meta`` = ``{"width", "height", "state"}``). The JSON body base64-encodes ``data``
    (:func:`to_payload`), the binary body sends it as it is (:mod:`mira_env.serve.frames`)."""
    check_choice("image encoding", encoding, IMAGE_ENCODINGS, error=EditorError)
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    state = image_state(image)
    encode_state(state)  # refuses non-JSON state here, not in the JSON encoder later
    if encoding == "raw":
        return {"width": rgb.width, "height": rgb.height, "state": state}, rgb.tobytes()
    buffer = io.BytesIO()
    rgb.save(buffer, format="PNG", compress_level=compress_level)
    return {"state": state}, buffer.getvalue()


def _check_raw_size(meta: Mapping[str, Any], max_pixels: int | None, what: str) -> tuple[int, int]:
    width, height = meta.get("width"), meta.get("height")
    for name, value in (("width", width), ("height", height)):
        check_int(f"raw {what} {name}", value, error=EditorError)
    if max_pixels is not None and width * height > max_pixels:
        raise EditorError(f"image payload is {width}x{height}, over the limit of {max_pixels} pixels")
    return width, height


def decode_image(data: bytes | memoryview, encoding: str, meta: Mapping[str, Any], *, max_pixels: int | None = None,
                 what: str = "image payload") -> Image.Image:
    """The RGB image (with ``meta["state"]``) of the bytes :func:`encode_image` made; ``what`` names the carrier
    in errors (``"image payload"``, ``"image blob"``)."""
    if encoding == "raw":
        width, height = _check_raw_size(meta, max_pixels, what)
        if len(data) != width * height * 3:
            raise EditorError(f"raw {what} holds {len(data)} bytes; {width}x{height} RGB needs {width * height * 3}")
        image = Image.frombytes("RGB", (width, height), bytes(data))
    else:
        try:
            image = Image.open(io.BytesIO(data))
            if max_pixels is not None and image.width * image.height > max_pixels:
                raise EditorError(f"image payload is {image.width}x{image.height}, over the limit of {max_pixels} "
                                  "pixels")
            image = image.convert("RGB")
        except EditorError:
            raise
        except Exception as exc:  # noqa: BLE001 - any decoder failure is this payload's problem
            raise EditorError(f"{what} is not a readable image ({type(exc).__name__}: {exc})") from None
    state = meta.get("state")
    return image if state is None else with_state(image, state)


def to_payload(image: Image.Image, encoding: str = "png") -> dict[str, Any]:
    """``{"png_base64": <RGB PNG>, "state": ...}`` (or, ``encoding="raw"``, ``{"raw_base64": <RGB bytes>,
    "width": W, "height": H, "state": ...}``) for a JSON request or response."""
    meta, data = encode_image(image, encoding)
    return {f"{encoding}_base64": base64.b64encode(data).decode("ascii"), **meta}


def _b64(payload: Mapping[str, Any], key: str) -> bytes:
    try:
        return base64.b64decode(payload[key], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EditorError(f"image payload {key!r} is not valid base64 ({exc})") from None


def from_payload(payload: Mapping[str, Any], *, max_pixels: int | None = None) -> Image.Image:
    """The RGB image (with its state) of a :func:`to_payload` dict (either encoding); clear errors for bad payloads."""
    if isinstance(payload, Mapping) and isinstance(payload.get("raw_base64"), str):
        _check_raw_size(payload, max_pixels, "image payload")  # before decoding the bytes
        return decode_image(_b64(payload, "raw_base64"), "raw", payload, max_pixels=max_pixels)
    if not isinstance(payload, Mapping) or not isinstance(payload.get("png_base64"), str):
        raise EditorError(f"image payload {describe(payload)} must be a dict with a 'png_base64' string (or a "
                          "'raw_base64' string with 'width' and 'height')")
    return decode_image(_b64(payload, "png_base64"), "png", payload, max_pixels=max_pixels)


__all__ = ["IMAGE_ENCODINGS", "STATE_COLUMN", "attach_column_state", "decode_image", "decode_state", "encode_image", "encode_state",
           "from_payload", "image_state", "to_payload", "with_state"]
