"""Image helpers shared by the terms: RGB conversion, size matching, content hashes."""

from __future__ import annotations

import hashlib

from PIL import Image


def rgb(image: Image.Image) -> Image.Image:
    """``image`` in RGB mode (a copy only when a conversion is needed)."""
    return image if image.mode == "RGB" else image.convert("RGB")


def match_size(image: Image.Image, like: Image.Image) -> Image.Image:
    """``image`` resized (bicubic) to ``like``'s size when they differ; editors may change resolution."""
    return image if image.size == like.size else image.resize(like.size, Image.BICUBIC)


def image_hash(image: Image.Image) -> str:
    """SHA-256 of an image's mode, size and pixels (not its metadata): equal pixels -> equal hash."""
    digest = hashlib.sha256()
    digest.update(f"{image.mode}:{image.size[0]}x{image.size[1]}:".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def png_bytes(image: Image.Image) -> bytes:
    """``image`` encoded as PNG."""
    import io

    buffer = io.BytesIO()
    rgb(image).save(buffer, format="PNG")
    return buffer.getvalue()
