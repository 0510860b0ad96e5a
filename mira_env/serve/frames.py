"""The binary body of the editor API (since 1.2): a small JSON header followed by the images' bytes.

A JSON body carries every image as base64 text inside the JSON document; at 1024^2 that is 5.6 MB of text per
image to encode, parse and decode on both sides (~60 ms per image and direction on this machine, most of the
service's overhead). The binary body sends the same document with each image replaced by a reference to a
byte blob that follows it::

    b"MIRF" | uint32 big-endian: header length N | N bytes: the JSON header (UTF-8) | blob 0 | blob 1 | ...

The header is the JSON body of :mod:`mira_env.serve.protocol` with each image payload replaced by
``{"blob": k, "format": "raw", "width": W, "height": H, "state": ...}`` (RGB bytes) or
``{"blob": k, "format": "png", "state": ...}`` (a PNG file, written with ``compress_level=1``), and a
``"blobs": [size_0, size_1, ...]`` list of the blobs' byte lengths, in order. Content type
:data:`BINARY_CONTENT_TYPE`; a server answers a binary request with a binary answer, a JSON request with JSON.
A client uses it when ``/info`` lists ``"binary"`` in ``body_formats`` (servers before 1.2 know JSON only).
"""

from __future__ import annotations

import json
import struct
from typing import Any, Mapping, Sequence

from PIL import Image

from mira_env.editors.state import decode_image, encode_image
from mira_env.errors import EditorError, describe

BINARY_CONTENT_TYPE = "application/x-mira-frames"
MAGIC = b"MIRF"
BODY_FORMATS = ("json", "binary")
_PREFIX = struct.Struct(">4sI")


def pack(header: Mapping[str, Any], blobs: Sequence[bytes]) -> bytes:
    """The binary body for ``header`` (a JSON object) and ``blobs`` (its ``"blobs"`` sizes are filled in)."""
    document = dict(header)
    document["blobs"] = [len(blob) for blob in blobs]
    text = json.dumps(document, ensure_ascii=False, allow_nan=False).encode("utf-8")
    return b"".join([_PREFIX.pack(MAGIC, len(text)), text, *blobs])


def unpack(data: bytes) -> tuple[dict, list[memoryview]]:
    """``(header, blobs)`` of a binary body; :class:`ValueError` saying what is wrong with a malformed one."""
    if len(data) < _PREFIX.size:
        raise ValueError(f"a binary body starts with {_PREFIX.size} bytes (magic, header length); got {len(data)}")
    magic, size = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise ValueError(f"a binary body starts with {MAGIC!r}, got {bytes(magic)!r}")
    end = _PREFIX.size + size
    if end > len(data):
        raise ValueError(f"the header says {size} bytes but only {len(data) - _PREFIX.size} follow")
    try:
        header = json.loads(bytes(data[_PREFIX.size:end]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"the binary body's header is not JSON ({exc})") from None
    sizes = header.get("blobs") if isinstance(header, dict) else None
    if not isinstance(sizes, list) or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in sizes):
        raise ValueError(f"the binary body's header needs 'blobs': a list of byte sizes, got {describe(sizes)}")
    if end + sum(sizes) != len(data):
        raise ValueError(f"the blobs' sizes add up to {sum(sizes)} bytes but {len(data) - end} follow the header")
    view, blobs = memoryview(data), []
    for blob_size in sizes:
        blobs.append(view[end:end + blob_size])
        end += blob_size
    return header, blobs


def image_blob(image: Image.Image, encoding: str = "raw") -> tuple[dict, bytes]:
    """``(meta, bytes)`` of ``image`` for a binary body (``meta["blob"]`` is set by the caller); PNG at
    ``compress_level=1`` (speed over size: the bytes are not base64-inflated here)."""
    meta, data = encode_image(image, encoding, compress_level=1)
    return {"format": encoding, **meta}, data


def blob_image(meta: Any, blobs: Sequence[memoryview], *, max_pixels: int | None = None) -> Image.Image:
    """The image (with its state) a binary body's image reference ``meta`` points at."""
    if not isinstance(meta, Mapping):
        raise EditorError(f"image reference {describe(meta)} must be an object with 'blob' and 'format'")
    index, fmt = meta.get("blob"), meta.get("format")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(blobs):
        raise EditorError(f"image reference blob={describe(index)} is not one of the body's {len(blobs)} blobs")
    if fmt not in ("raw", "png"):
        raise EditorError(f"image reference format={describe(fmt)} is not 'raw' or 'png'")
    return decode_image(blobs[index], fmt, meta, max_pixels=max_pixels, what="image blob")


def move_images_to_blobs(document: dict) -> bytes:
    """Pack an answer whose result images carry their bytes under ``"_bytes"`` (see ``encode_result``)."""
    blobs: list[bytes] = []
    for result in document.get("results") or []:
        image = result.get("image") if isinstance(result, dict) else None
        if isinstance(image, dict) and "_bytes" in image:
            blobs.append(image.pop("_bytes"))
            image["blob"] = len(blobs) - 1
    return pack(document, blobs)


__all__ = ["BINARY_CONTENT_TYPE", "BODY_FORMATS", "blob_image", "image_blob", "move_images_to_blobs", "pack",
           "unpack"]
