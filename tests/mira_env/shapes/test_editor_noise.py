import pytest
from PIL import Image

from mira_env.editors import make_editor
from mira_env.editors.base import EDIT_STATUS_KEY, STATE_KEY, edit_status
from mira_env.errors import ConfigError, EditorError
from mira_env.shapes.editor import ShapesEditor
from mira_env.shapes.noise import EditorNoise
from mira_env.shapes.render import render_image
from mira_env.shapes.scene import Obj, Scene

SCENE = Scene.make("white", [Obj("circle", "red", "small", 0, 0), Obj("star", "blue", "medium", 0, 1),
                             Obj("square", "red", "large", 1, 1), Obj("hexagon", "green", "medium", 2, 2)])
INSTRUCTIONS = ["make the red circle yellow", "move the star to the bottom left", "remove the square",
                "add a large pink diamond at the top right", "make the background gray",
                "replace the hexagon with a triangle", "shrink the square"]


def outputs(editor, seeds):
    image = render_image(SCENE)
    return [(out.info[STATE_KEY], out.info[EDIT_STATUS_KEY], out.tobytes())
            for out in editor.edit([image] * len(seeds), INSTRUCTIONS * (len(seeds) // len(INSTRUCTIONS)), seeds)]


def test_make_editor_builds_the_shapes_editor_and_it_is_batched():
    editor = make_editor("shapes", noise=0.0)
    assert isinstance(editor, ShapesEditor) and editor.info.name == "shapes"
    image = render_image(SCENE)
    results = editor.edit([image, image], ["remove the star", "remove the triangle"], [0, 1])
    assert len(results) == 2
    assert edit_status(results[0])["ok"] is True and results[0].tobytes() != image.tobytes()
    assert edit_status(results[1]) == {"ok": False, "reason": "no_match", "message": "no object matches 'the triangle'",
                                       "op": "remove", "ops": ["remove"], "changed": False, "noise": []}
    assert results[1].tobytes() == image.tobytes() and results[1].info[STATE_KEY] == SCENE.to_dict()


def test_editor_refuses_images_without_a_scene():
    with pytest.raises(EditorError, match=r"^ShapesEditor needs images rendered by the shapes world"):
        ShapesEditor().edit([Image.new("RGB", (32, 32))], ["remove the star"], [0])


def test_zero_noise_is_exact_whatever_the_seed():
    editor = ShapesEditor()
    assert outputs(editor, list(range(7))) == outputs(editor, list(range(100, 107)))


def test_same_seed_same_noise_and_seeds_matter():
    noisy = EditorNoise.uniform(0.5)
    first = outputs(ShapesEditor(noise=noisy), list(range(70)))
    assert first == outputs(ShapesEditor(noise=noisy), list(range(70)))
    assert first != outputs(ShapesEditor(noise=noisy), list(range(1000, 1070)))
    assert first != outputs(ShapesEditor(noise=EditorNoise.uniform(0.5, seed=1)), list(range(70)))
    events = [event.split(":")[0] for _, status, _ in first for event in status["noise"]]
    assert {"ignored", "wrong_object", "color_drift", "position_drift"} <= set(events)


def execute(noise, text, seed=0):
    return ShapesEditor(noise=noise).execute(SCENE, text, seed)


def test_ignore_noise_leaves_the_scene_and_reports_ok():
    scene, status = execute(EditorNoise(ignore=1.0), "remove the star")
    assert scene == SCENE and status["ok"] and status["noise"] == ["ignored: remove"]


def test_wrong_object_noise_edits_a_similar_object():
    scene, status = execute(EditorNoise(wrong_object=1.0), "make the red circle yellow")
    assert scene.at(0, 0) == Obj("circle", "red", "small", 0, 0)
    assert scene.at(1, 1) == Obj("square", "yellow", "large", 1, 1)  # the other red object
    assert status["noise"] == ["wrong_object: edited the red square in the center instead"]


def test_color_drift_gives_a_neighbouring_colour():
    scene, status = execute(EditorNoise(color_drift=1.0), "make the red circle yellow")
    assert scene.at(0, 0).color in ("orange", "green")
    assert status["noise"][0].startswith("color_drift: the circle came out ")
    scene, _ = execute(EditorNoise(color_drift=1.0), "make the background gray")
    assert scene.background in ("black", "beige")


def test_position_drift_moves_the_edited_object_to_a_free_neighbour():
    scene, status = execute(EditorNoise(position_drift=1.0), "make the red circle yellow")
    moved = [obj for obj in scene.objects if obj.color == "yellow"]
    assert len(moved) == 1 and moved[0].cell in ((1, 0),)  # (0, 1) holds the star
    assert status["noise"] == ["position_drift: the circle landed in the middle left"]


def test_partial_noise_runs_a_strict_prefix_and_skips_unknown_clauses():
    text = "remove the star, then remove the hexagon and then remove the red circle"
    scene, status = execute(EditorNoise(partial=1.0), text)
    assert status["ok"] and status["noise"][0].startswith("partial: executed ")
    assert len(scene.objects) in (2, 3)  # one or two of the three removals ran (of 4 objects)
    scene, status = execute(EditorNoise(partial=1.0), "remove the star and then dance")
    assert status["ok"] and scene.at(0, 1) is None
    scene, status = execute(EditorNoise(), "remove the star and then dance")
    assert not status["ok"] and scene == SCENE


@pytest.mark.parametrize("value, message", [
    ({"ignore": 1.5}, "EditorNoise.ignore=1.5 (type float) must be a finite number in [0, 1] (a probability)"),
    ({"partial": "high"}, "EditorNoise.partial='high' (type str) must be a finite number in [0, 1] (a probability)"),
    ({"seed": -1}, "EditorNoise.seed=-1 (type int) must be an int >= 0"),
    ({"loud": 0.1}, "unknown noise setting(s) ['loud']; known: ['color_drift', 'ignore', 'partial', "
                    "'position_drift', 'seed', 'wrong_object']"),
])
def test_noise_config_errors(value, message):
    with pytest.raises(ConfigError) as info:
        EditorNoise.coerce(value)
    assert str(info.value) == message


def test_noise_coercion():
    assert EditorNoise.coerce(None) == EditorNoise() and not EditorNoise().active
    assert EditorNoise.coerce(0.2) == EditorNoise.uniform(0.2)
    assert EditorNoise.coerce({"ignore": 0.3}).ignore == 0.3
