"""Deterministic numpy rendering of shapes-world scenes.

Each object is an anti-aliased patch (a 4x supersampled PIL mask blended over the background) pasted
into its cell. Patches and whole images are cached, so rendering a scene seen before costs one copy.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from mira_env.editors.base import STATE_KEY
from mira_env.errors import ConfigError, describe
from mira_env.shapes.scene import GRID, Scene

RGB = {
    # object colours
    "red": (220, 40, 40), "orange": (245, 140, 20), "yellow": (240, 215, 30), "green": (40, 170, 60),
    "cyan": (30, 200, 210), "blue": (40, 80, 220), "purple": (140, 60, 190), "pink": (245, 130, 190),
    "brown": (130, 80, 40),
    # backgrounds
    "white": (255, 255, 255), "black": (0, 0, 0), "gray": (128, 128, 128), "beige": (235, 225, 195),
    "navy": (20, 30, 80), "olive": (110, 120, 40),
}
#: radius of each size as a fraction of half the cell's shorter side
SIZE_FRACTION = {"small": 0.45, "medium": 0.7, "large": 0.95}
_SUPERSAMPLE = 4


#: the largest side of a shapes-world image (an absurd resolution is refused before it is rendered)
MAX_RESOLUTION = 8192


def resolution_hw(resolution: int | tuple[int, int]) -> tuple[int, int]:
    """``(height, width)`` from an int (square) or a pair; :class:`ConfigError` below 3x3 pixels."""
    if isinstance(resolution, (int,)) and not isinstance(resolution, bool):
        pair = (resolution, resolution)
    elif isinstance(resolution, (tuple, list)) and len(resolution) == 2:
        pair = tuple(resolution)
    else:
        raise ConfigError(f"resolution={describe(resolution)} must be an int or a (height, width) pair")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= GRID * 4 for v in pair):
        raise ConfigError(f"resolution={describe(resolution)} must be at least {GRID * 4} pixels per side "
                          f"(a {GRID}x{GRID} grid of cells of 4 pixels or more)")
    if max(pair) > MAX_RESOLUTION:
        raise ConfigError(f"resolution={describe(resolution)} is over {MAX_RESOLUTION} pixels per side; "
                          f"pass a smaller resolution")
    return int(pair[0]), int(pair[1])


def _polygon(shape: str) -> list[tuple[float, float]]:
    """Unit-radius outline of a polygonal shape, centred on the origin, y pointing down."""
    if shape == "square":
        return [(-0.8, -0.8), (0.8, -0.8), (0.8, 0.8), (-0.8, 0.8)]
    if shape == "diamond":
        return [(0.0, -1.0), (0.75, 0.0), (0.0, 1.0), (-0.75, 0.0)]
    if shape == "triangle":
        points = [(math.cos(math.radians(a)), math.sin(math.radians(a))) for a in (-90, 30, 150)]
        return [(x, y + 0.2) for x, y in points]
    if shape == "hexagon":
        return [(math.cos(math.radians(a)), math.sin(math.radians(a))) for a in range(0, 360, 60)]
    if shape == "star":
        points = []
        for k in range(10):
            radius = 1.0 if k % 2 == 0 else 0.45
            angle = math.radians(-90 + 36 * k)
            points.append((radius * math.cos(angle), radius * math.sin(angle)))
        return points
    raise ConfigError(f"unknown shape {shape!r}")


@lru_cache(maxsize=1024)
def shape_mask(shape: str, size: str, height: int, width: int) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] (float32, ``(height, width)``) of a shape centred in a cell."""
    s = _SUPERSAMPLE
    canvas = Image.new("L", (width * s, height * s), 0)
    draw = ImageDraw.Draw(canvas)
    cx, cy = width * s / 2.0, height * s / 2.0
    radius = SIZE_FRACTION[size] * min(height, width) * s / 2.0
    if shape == "circle":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=255)
    else:
        draw.polygon([(cx + x * radius, cy + y * radius) for x, y in _polygon(shape)], fill=255)
    small = canvas.resize((width, height), Image.Resampling.BOX)
    mask = np.asarray(small, dtype=np.float32) / 255.0
    mask.setflags(write=False)
    return mask


@lru_cache(maxsize=4096)
def _patch(shape: str, size: str, color: str, background: str, height: int, width: int) -> np.ndarray:
    alpha = shape_mask(shape, size, height, width)[..., None]
    fg = np.asarray(RGB[color], np.float32)
    bg = np.asarray(RGB[background], np.float32)
    patch = np.rint(bg * (1.0 - alpha) + fg * alpha).astype(np.uint8)
    patch.setflags(write=False)
    return patch


@lru_cache(maxsize=64)
def cell_edges(height: int, width: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Pixel boundaries of the grid rows and columns."""
    rows = tuple(int(round(height * k / GRID)) for k in range(GRID + 1))
    cols = tuple(int(round(width * k / GRID)) for k in range(GRID + 1))
    return rows, cols


def render_array(scene: Scene, height: int = 128, width: int = 128) -> np.ndarray:
    """The scene as a fresh ``uint8`` array of shape ``(height, width, 3)``."""
    array = np.empty((height, width, 3), np.uint8)
    array[...] = RGB[scene.background]
    rows, cols = cell_edges(height, width)
    for obj in scene.objects:
        r0, r1, c0, c1 = rows[obj.row], rows[obj.row + 1], cols[obj.col], cols[obj.col + 1]
        array[r0:r1, c0:c1] = _patch(obj.shape, obj.size, obj.color, scene.background, r1 - r0, c1 - c0)
    return array


class RenderCache:
    """An LRU of rendered PIL images keyed by ``(scene, height, width)``; returns fresh copies."""

    def __init__(self, maxsize: int = 4096) -> None:
        self.maxsize = maxsize
        self._images: OrderedDict[tuple, Image.Image] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, scene: Scene, height: int, width: int) -> Image.Image:
        key = (scene, height, width)
        image = self._images.get(key)
        if image is None:
            self.misses += 1
            image = Image.fromarray(render_array(scene, height, width), "RGB")
            self._images[key] = image
            if len(self._images) > self.maxsize:
                self._images.popitem(last=False)
        else:
            self.hits += 1
            self._images.move_to_end(key)
        return image.copy()


_DEFAULT_CACHE = RenderCache()


def render_image(scene: Scene, resolution: int | tuple[int, int] = 128, cache: RenderCache | None = None,
                 ) -> Image.Image:
    """The scene as an RGB PIL image carrying its scene dict in ``image.info[STATE_KEY]``."""
    height, width = resolution_hw(resolution)
    image = (cache or _DEFAULT_CACHE).get(scene, height, width)
    image.info[STATE_KEY] = scene.to_dict()
    return image
