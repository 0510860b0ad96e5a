import numpy as np
import pytest

from mira_env.editors.base import STATE_KEY
from mira_env.errors import ConfigError, EditorError
from mira_env.shapes.render import RGB, render_array, render_image, resolution_hw
from mira_env.shapes.scene import SHAPES, Obj, Scene, SceneError


def scene_of(*objects, background="white"):
    return Scene.make(background, objects)


def test_scene_dict_round_trip_is_canonical():
    a = scene_of(Obj("star", "red", "small", 2, 2), Obj("circle", "blue", "large", 0, 1))
    b = scene_of(Obj("circle", "blue", "large", 0, 1), Obj("star", "red", "small", 2, 2))
    assert a == b
    assert a.to_dict() == b.to_dict()
    assert Scene.from_dict(a.to_dict()) == a
    assert [o["row"] for o in a.to_dict()["objects"]] == [0, 2]


@pytest.mark.parametrize("data, message", [
    ("nope", "scene must be a dict with 'background' and 'objects', got 'nope' (type str)"),
    ({"background": "teal", "objects": []}, "scene: background='teal' (type str) is not one of: 'white', 'black', "
                                            "'gray', 'beige', 'navy', 'olive'"),
    ({"background": "white", "objects": {}}, "scene: 'objects' must be a list of object dicts, got {} (type dict)"),
    ({"background": "white", "objects": [{"shape": "blob", "color": "red", "size": "small", "row": 0, "col": 0}]},
     "scene object 0: shape='blob' (type str) is not one of: 'circle', 'square', 'triangle', 'star', 'diamond', "
     "'hexagon'"),
    ({"background": "white", "objects": [{"shape": "star", "color": "red", "size": "small", "row": 3, "col": 0}]},
     "scene object 0: row=3 (type int) must be an int in [0, 2]"),
])
def test_scene_from_dict_errors(data, message):
    with pytest.raises(SceneError) as info:
        Scene.from_dict(data)
    assert str(info.value) == message
    assert isinstance(info.value, EditorError)


def test_two_objects_in_one_cell_is_refused():
    with pytest.raises(SceneError, match="two objects share the cell 'center'"):
        scene_of(Obj("star", "red", "small", 1, 1), Obj("circle", "red", "small", 1, 1))


def test_render_is_deterministic_and_carries_the_scene():
    scene = scene_of(Obj("star", "red", "large", 0, 0), Obj("hexagon", "blue", "small", 2, 1), background="beige")
    first, second = render_array(scene), render_array(scene)
    assert first.shape == (128, 128, 3) and first.dtype == np.uint8
    assert np.array_equal(first, second)
    image = render_image(scene, 96)
    assert image.size == (96, 96)
    assert image.info[STATE_KEY] == scene.to_dict()
    # the background shows where there is no object, the colour at the object's centre
    assert tuple(first[64, 64]) == RGB["beige"]
    assert tuple(first[21, 21]) == RGB["red"]


def test_every_shape_renders_differently_and_sizes_grow():
    arrays = [render_array(scene_of(Obj(shape, "red", "large", 1, 1))) for shape in SHAPES]
    assert len({a.tobytes() for a in arrays}) == len(SHAPES)
    covered = [int((render_array(scene_of(Obj("circle", "red", size, 1, 1))) != 255).any(-1).sum())
               for size in ("small", "medium", "large")]
    assert covered[0] < covered[1] < covered[2]


def test_non_square_resolution():
    scene = scene_of(Obj("square", "green", "medium", 2, 2))
    assert render_array(scene, 60, 90).shape == (60, 90, 3)
    assert resolution_hw((60, 90)) == (60, 90)


@pytest.mark.parametrize("value, message", [
    (8, "resolution=8 (type int) must be at least 12 pixels per side (a 3x3 grid of cells of 4 pixels or more)"),
    ("big", "resolution='big' (type str) must be an int or a (height, width) pair"),
])
def test_resolution_errors(value, message):
    with pytest.raises(ConfigError) as info:
        resolution_hw(value)
    assert str(info.value) == message
