"""The shapes-world scene graph: a background colour and objects on a 3x3 grid of cells.

One object per cell, so a scene is exactly what its image shows and two scenes are equal exactly
when they render to the same image. Internally a scene is a :class:`Scene` (hashable named tuples,
objects sorted by cell); at the editor boundary it is a JSON-like dict (``Scene.to_dict``)::

    {"background": "white",
     "objects": [{"shape": "circle", "color": "red", "size": "small", "row": 0, "col": 2}, ...]}
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, NamedTuple

from mira_env.errors import EditorError, describe
from mira_env.validate import check_choice, check_int

GRID = 3
SHAPES = ("circle", "square", "triangle", "star", "diamond", "hexagon")
COLORS = ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink", "brown")
BACKGROUNDS = ("white", "black", "gray", "beige", "navy", "olive")
SIZES = ("small", "medium", "large")
SIZE_RANK = {name: rank for rank, name in enumerate(SIZES)}
#: canonical name of every cell, row-major from the top left
CELL_NAMES = {
    (0, 0): "top left", (0, 1): "top center", (0, 2): "top right",
    (1, 0): "middle left", (1, 1): "center", (1, 2): "middle right",
    (2, 0): "bottom left", (2, 1): "bottom center", (2, 2): "bottom right",
}
CELLS = tuple(CELL_NAMES)
DIRECTIONS = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}


class SceneError(EditorError):
    """A scene dict is malformed (unknown colour, two objects in one cell, missing field...)."""


class Obj(NamedTuple):
    """One object: what it is and which cell it occupies."""

    shape: str
    color: str
    size: str
    row: int
    col: int

    @property
    def cell(self) -> tuple[int, int]:
        return (self.row, self.col)

    def to_dict(self) -> dict[str, Any]:
        return {"shape": self.shape, "color": self.color, "size": self.size, "row": self.row, "col": self.col}


class Scene(NamedTuple):
    """A background colour and objects sorted by (row, col); hashable, so usable as a cache key."""

    background: str
    objects: tuple[Obj, ...]

    @staticmethod
    def make(background: str, objects: Iterable[Obj]) -> "Scene":
        """A scene with ``objects`` put in canonical (row, col) order; cells must be distinct."""
        ordered = tuple(sorted(objects, key=lambda o: (o.row, o.col)))
        for first, second in zip(ordered, ordered[1:]):
            if first.cell == second.cell:
                raise SceneError(f"two objects share the cell {CELL_NAMES.get(first.cell, first.cell)!r}: "
                                 f"{first} and {second}; a cell holds at most one object")
        return Scene(background, ordered)

    def at(self, row: int, col: int) -> Obj | None:
        for obj in self.objects:
            if obj.row == row and obj.col == col:
                return obj
        return None

    def free_cells(self) -> list[tuple[int, int]]:
        taken = {obj.cell for obj in self.objects}
        return [cell for cell in CELLS if cell not in taken]

    def replace_object(self, old: Obj, new: Obj | None) -> "Scene":
        """The scene with ``old`` swapped for ``new`` (``None`` removes it)."""
        rest = [obj for obj in self.objects if obj != old]
        if new is not None:
            rest.append(new)
        return Scene.make(self.background, rest)

    def to_dict(self) -> dict[str, Any]:
        return {"background": self.background, "objects": [obj.to_dict() for obj in self.objects]}

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> "Scene":
        """Parse and validate a scene dict; :class:`SceneError` names the bad field and value."""
        return _scene_from_dict(data)


def _check(name: str, value: Any, choices: tuple[str, ...], where: str) -> str:
    return check_choice(f"{where}: {name}", value, choices, error=SceneError)


def _scene_from_dict(data: Mapping[str, Any]) -> Scene:
    if isinstance(data, Scene):
        return data
    if not isinstance(data, Mapping):
        raise SceneError(f"scene must be a dict with 'background' and 'objects', got {describe(data)}")
    background = _check("background", data.get("background"), BACKGROUNDS, "scene")
    raw_objects = data.get("objects")
    if not isinstance(raw_objects, (list, tuple)):
        raise SceneError(f"scene: 'objects' must be a list of object dicts, got {describe(raw_objects)}")
    objects = []
    for index, raw in enumerate(raw_objects):
        where = f"scene object {index}"
        if not isinstance(raw, Mapping):
            raise SceneError(f"{where} must be a dict, got {describe(raw)}")
        row, col = raw.get("row"), raw.get("col")
        for name, value in (("row", row), ("col", col)):
            check_int(f"{where}: {name}", value, minimum=0, maximum=GRID - 1, error=SceneError)
        objects.append(Obj(_check("shape", raw.get("shape"), SHAPES, where),
                           _check("color", raw.get("color"), COLORS, where),
                           _check("size", raw.get("size"), SIZES, where), row, col))
    return Scene.make(background, objects)
