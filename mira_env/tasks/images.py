"""Loading and normalising images for tasks and observations.

Every image that enters an episode goes through :func:`normalize_image`: RGB, 8 bit, under a pixel
limit. Failures raise :class:`~mira_env.errors.TaskError` naming the record, never a bare PIL error.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mira_env.errors import TaskError

#: Default maximum number of pixels of a task image (about 24 megapixels).
DEFAULT_MAX_PIXELS = 24_000_000


def _from_high_bit_depth(image: Image.Image) -> Image.Image:
    """Scale 16/32-bit single channel images ("I;16", "I", "F") to 8 bit instead of clipping."""
    array = np.asarray(image, dtype=np.float64)
    if image.mode.startswith("I;16") or (image.mode == "I" and array.max(initial=0) > 255):
        top = 65535.0 if array.max(initial=0) <= 65535 else float(array.max())
        array = array / top * 255.0
    elif image.mode == "F":
        lo, hi = float(np.nanmin(array)), float(np.nanmax(array))
        array = (array - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(array)
    return Image.fromarray(np.clip(np.nan_to_num(array), 0, 255).astype(np.uint8), mode="L")


def normalize_image(image: Image.Image, *, record: str = "image", max_pixels: int = DEFAULT_MAX_PIXELS,
                    background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Return ``image`` as an 8-bit RGB image.

    An EXIF orientation (a phone photo taken sideways) is applied, so the image is upright as viewers show
    it. RGBA / LA / P-with-transparency images are composited over ``background``; grayscale and 16-bit
    images are converted (16-bit scaled to 8-bit). Images with more than ``max_pixels`` pixels raise
    :class:`TaskError` naming ``record`` (resize them offline, or raise ``max_pixels``).
    """
    if not isinstance(image, Image.Image):
        raise TaskError(f"{record}: expected a PIL.Image.Image, got {type(image).__name__}")
    width, height = image.size
    if width < 1 or height < 1:
        raise TaskError(f"{record}: image has an empty size {width}x{height}")
    if width * height > max_pixels:
        raise TaskError(
            f"{record}: image is {width}x{height} = {width * height} pixels, over the limit of "
            f"{max_pixels}; downscale it or pass a larger max_pixels")
    orientation = image.getexif().get(0x0112, 1)  # EXIF Orientation
    if orientation not in (1, None):
        image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        image = _from_high_bit_depth(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, background + (255,))
        canvas.alpha_composite(rgba)
        image = canvas
    if image.mode != "RGB":
        image = image.convert("RGB")
    return image


def load_image(path: str | os.PathLike, *, record: str = "image", root: str | os.PathLike | None = None,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open, fully decode and normalise the image at ``path``.

    ``path`` may be relative to ``root``. When ``root`` is given the resolved path must stay inside
    it (no ``../`` escapes, no absolute paths elsewhere). Missing, unreadable, truncated or non-image
    files raise :class:`TaskError` naming ``record`` and the path.
    """
    raw = Path(path)
    if root is not None:
        root_path = Path(root).resolve()
        resolved = (root_path / raw).resolve()
        if resolved != root_path and root_path not in resolved.parents:
            raise TaskError(f"{record}: image path {str(path)!r} resolves to {str(resolved)!r}, outside the "
                            f"dataset root {str(root_path)!r}; use a path inside the root")
    else:
        resolved = raw.resolve()
    if not resolved.is_file():
        raise TaskError(f"{record}: image file {str(resolved)!r} does not exist")
    try:
        with Image.open(resolved) as opened:
            if opened.size[0] * opened.size[1] > max_pixels:
                raise TaskError(
                    f"{record}: image {str(resolved)!r} is {opened.size[0]}x{opened.size[1]} pixels, over "
                    f"the limit of {max_pixels}; downscale it or pass a larger max_pixels")
            opened.load()
            image = opened.copy()
    except TaskError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise TaskError(f"{record}: cannot read image {str(resolved)!r}: {exc}") from exc
    return normalize_image(image, record=record, max_pixels=max_pixels)


def to_array(image: Image.Image, size: tuple[int, int] | None = None) -> np.ndarray:
    """``uint8`` array of shape (H, W, 3); resized to ``size`` = (height, width) with bicubic filtering."""
    if size is not None and (image.height, image.width) != tuple(size):
        image = image.resize((size[1], size[0]), Image.Resampling.BICUBIC)
    array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(array)


def image_strip(images: list[np.ndarray], gap: int = 2, fill: int = 255) -> np.ndarray:
    """Concatenate equally tall (H, W, 3) arrays left to right with ``gap`` pixels of ``fill`` between."""
    if not images:
        raise ValueError("image_strip needs at least one image")
    height = images[0].shape[0]
    parts: list[np.ndarray] = []
    for index, image in enumerate(images):
        if image.shape[0] != height:
            raise ValueError(f"image {index} has height {image.shape[0]}, expected {height}")
        if index:
            parts.append(np.full((height, gap, 3), fill, dtype=np.uint8))
        parts.append(image)
    return np.concatenate(parts, axis=1)
