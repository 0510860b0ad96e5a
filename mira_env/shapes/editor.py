"""``ShapesEditor``: the batched editor of the shapes world.

It reads the scene from each input image (``image.info[STATE_KEY]``), parses the instruction with
the shapes grammar, executes it exactly (or with seeded :class:`~mira_env.shapes.noise.EditorNoise`),
and returns the rendered new scene carrying the new scene dict and an edit status::

    image.info[EDIT_STATUS_KEY] = {"ok": True, "reason": None, "message": None, "op": "recolor",
                                   "ops": ["recolor"], "changed": True, "noise": []}

``reason`` on failure is ``"parse_error"``, ``"no_match"``, ``"ambiguous"`` or ``"blocked"``
(``message`` says what exactly); a failed instruction leaves the image unchanged. A compound
instruction runs all its clauses or none of them (unless ``partial`` noise fires).
"""

from __future__ import annotations

import random
from collections import OrderedDict
from typing import Any, Sequence

from PIL import Image

from mira_env.editors.base import EDIT_STATUS_KEY, STATE_KEY, EditorInfo, check_batch
from mira_env.errors import EditorError
from mira_env.shapes.execute import EditFailure, apply_to, resolve
from mira_env.shapes.grammar import Op, ParseError, parse_clauses
from mira_env.shapes.noise import EditorNoise
from mira_env.shapes.render import RenderCache, resolution_hw
from mira_env.shapes.scene import BACKGROUNDS, CELL_NAMES, COLORS, DIRECTIONS, GRID, Scene


def _neighbour(palette: tuple[str, ...], name: str, rng: random.Random) -> str:
    index = palette.index(name)
    return palette[(index + (1 if rng.random() < 0.5 else -1)) % len(palette)]


def _status(ok: bool, reason: str | None = None, message: str | None = None, ops: Sequence[str] = (),
            changed: bool = False, noise: Sequence[str] = ()) -> dict[str, Any]:
    kinds = list(ops)
    return {"ok": ok, "reason": reason, "message": message,
            "op": kinds[0] if len(kinds) == 1 else ("compound" if kinds else None), "ops": kinds,
            "changed": changed, "noise": list(noise)}


class ShapesEditor:
    """Executes shapes-world instructions on images rendered by the shapes world.

    Args:
        noise: an :class:`EditorNoise`, a dict of its fields, a single probability for every kind, or
            ``None`` (exact editor, the default).
        resolution: output size (int or ``(height, width)``); ``None`` keeps each input's size.
        cache_size: rendered images kept in the LRU render cache.
    """

    def __init__(self, noise: EditorNoise | dict | float | None = None, resolution: int | tuple[int, int] | None = None,
                 cache_size: int = 4096) -> None:
        self.noise = EditorNoise.coerce(noise)
        self.resolution = None if resolution is None else resolution_hw(resolution)
        self.cache = RenderCache(cache_size)
        # scenes this editor produced, keyed by the id of the dict it stored on the output image
        self._parsed: OrderedDict[int, tuple[dict, Scene]] = OrderedDict()
        self._parsed_size = cache_size
        self.info = EditorInfo(name="shapes", resolution=self.resolution, deterministic=True,
                               extras={"noise": self.noise.to_dict()})

    # ------------------------------------------------------------------ protocol
    def edit(self, images: Sequence[Image.Image], instructions: Sequence[str],
             seeds: Sequence[int]) -> list[Image.Image]:
        check_batch(images, instructions, seeds)
        outputs = []
        for index, (image, text, seed) in enumerate(zip(images, instructions, seeds)):
            data = image.info.get(STATE_KEY)
            if data is None:
                raise EditorError(f"ShapesEditor needs images rendered by the shapes world (with their scene in "
                                  f"image.info[{STATE_KEY!r}]); images[{index}] has none. Use "
                                  f"mira_env.shapes tasks (gymnasium.make('mira/Shapes-v0')) or render_image(scene)")
            scene = self._scene(data)
            new_scene, status = self.execute(scene, text, seed)
            height, width = self.resolution or (image.height, image.width)
            output = self.cache.get(new_scene, height, width)
            output.info[STATE_KEY] = self._remember(new_scene)
            output.info[EDIT_STATUS_KEY] = status
            outputs.append(output)
        return outputs

    def _scene(self, data: Any) -> Scene:
        """The scene of a state dict; dicts this editor wrote are not parsed again (they are read-only:
        the environment hands out copies in ``info["state"]``)."""
        entry = self._parsed.get(id(data))
        if entry is not None and entry[0] is data:
            return entry[1]
        return Scene.from_dict(data)

    def _remember(self, scene: Scene) -> dict:
        data = scene.to_dict()
        self._parsed[id(data)] = (data, scene)
        if len(self._parsed) > self._parsed_size:
            self._parsed.popitem(last=False)
        return data

    # ------------------------------------------------------------------ core
    def execute(self, scene: Scene, instruction: str, seed: int = 0) -> tuple[Scene, dict[str, Any]]:
        """The scene after ``instruction`` and the status dict; the input scene on any failure."""
        try:
            clauses = parse_clauses(instruction)
        except ParseError as exc:
            return scene, _status(False, "parse_error", str(exc))
        rng = random.Random(int(seed) * 1_000_003 + self.noise.seed) if self.noise.active else None
        events: list[str] = []
        parsed = [op for op, _ in clauses if op is not None]
        if rng is not None and len(clauses) > 1 and parsed and rng.random() < self.noise.partial:
            keep = rng.randint(1, len(parsed) - 1) if len(parsed) > 1 else 1
            ops = parsed[:keep]
            events.append(f"partial: executed {keep} of {len(clauses)} clauses")
        else:
            errors = [error for op, error in clauses if op is None]
            if errors:
                return scene, _status(False, "parse_error", errors[0])
            ops = parsed
        current = scene
        for op in ops:
            try:
                current = self._apply(op, current, rng, events)
            except EditFailure as exc:
                return scene, _status(False, exc.reason, str(exc), [op.kind for op in ops], noise=events)
        return current, _status(True, None, None, [op.kind for op in ops], current != scene, events)

    def _apply(self, op: Op, scene: Scene, rng: random.Random | None, events: list[str]) -> Scene:
        target = resolve(op.ref, scene) if op.ref is not None else None
        noise = self.noise
        if rng is None:
            return apply_to(op, scene, target)[0]
        if rng.random() < noise.ignore:
            events.append(f"ignored: {op.kind}")
            return scene
        if target is not None and rng.random() < noise.wrong_object:
            others = [obj for obj in scene.objects if obj != target]
            similar = [obj for obj in others if obj.shape == target.shape or obj.color == target.color]
            pool = similar or others
            if pool:
                wrong = pool[rng.randrange(len(pool))]
                events.append(f"wrong_object: edited the {wrong.color} {wrong.shape} in the "
                              f"{CELL_NAMES[wrong.cell]} instead")
                try:
                    return self._drift(*apply_to(op, scene, wrong), op, rng, events)
                except EditFailure:
                    events.append("wrong_object: no visible effect")
                    return scene
        return self._drift(*apply_to(op, scene, target), op, rng, events)

    def _drift(self, scene: Scene, cell: tuple[int, int] | None, op: Op, rng: random.Random,
               events: list[str]) -> Scene:
        noise = self.noise
        if op.kind == "background":
            if rng.random() < noise.color_drift:
                color = _neighbour(BACKGROUNDS, scene.background, rng)
                events.append(f"color_drift: background came out {color}")
                scene = Scene(color, scene.objects)
            return scene
        if cell is None:
            return scene
        obj = scene.at(*cell)
        if obj is None:
            return scene
        if rng.random() < noise.color_drift:
            color = _neighbour(COLORS, obj.color, rng)
            events.append(f"color_drift: the {obj.shape} came out {color}")
            new = obj._replace(color=color)
            scene, obj = scene.replace_object(obj, new), new
        if rng.random() < noise.position_drift:
            free = [(obj.row + dr, obj.col + dc) for dr, dc in DIRECTIONS.values()
                    if 0 <= obj.row + dr < GRID and 0 <= obj.col + dc < GRID and scene.at(obj.row + dr, obj.col + dc) is None]
            if free:
                row, col = free[rng.randrange(len(free))]
                events.append(f"position_drift: the {obj.shape} landed in the {CELL_NAMES[(row, col)]}")
                scene = scene.replace_object(obj, obj._replace(row=row, col=col))
        return scene


__all__ = ["ShapesEditor"]
