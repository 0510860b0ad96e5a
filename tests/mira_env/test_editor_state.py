"""mira_env.editors.state: editor state survives columns and JSON payloads."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from mira_env.editors.base import STATE_KEY
from mira_env.editors.state import (attach_column_state, decode_state, encode_state, from_payload, image_state,
                                    to_payload, with_state)
from mira_env.errors import EditorError
from mira_env.shapes.editor import ShapesEditor
from mira_env.shapes.generator import ShapesTaskGenerator


def _scene_image():
    return ShapesTaskGenerator(split="test")[0].image


def test_payload_round_trip_keeps_pixels_and_state_and_the_editor_can_edit_it():
    image = _scene_image()
    assert image_state(image) is not None
    payload = json.loads(json.dumps(to_payload(image)))
    back = from_payload(payload)
    assert back.tobytes() == image.convert("RGB").tobytes() and image_state(back) == image_state(image)
    editor = ShapesEditor()
    direct = editor.edit([image], ["make the background black"], [0])[0]
    remote = editor.edit([back], ["make the background black"], [0])[0]
    assert direct.tobytes() == remote.tobytes() and image_state(direct) == image_state(remote)


def test_column_round_trip_and_stateless_images():
    image = with_state(Image.new("RGB", (4, 4)), {"objects": [1, 2], "name": "caf\u00e9"})
    text = encode_state(image_state(image))
    assert decode_state(text) == {"objects": [1, 2], "name": "caf\u00e9"}
    assert image_state(attach_column_state(Image.new("RGB", (4, 4)), text)) == {"objects": [1, 2], "name": "caf\u00e9"}
    plain = Image.new("RGB", (4, 4))
    assert encode_state(image_state(plain)) is None and attach_column_state(plain, None) is plain
    assert STATE_KEY not in with_state(image, None).info
    assert from_payload(to_payload(plain)).info.get(STATE_KEY) is None


@pytest.mark.parametrize("call, message", [
    (lambda: encode_state({"x": object()}), "is not JSON-serialisable"),
    (lambda: decode_state("{oops"), "editor state '{oops' is not valid JSON"),
    (lambda: decode_state(3), "editor state column holds 3 (type int)"),
    (lambda: from_payload({"png": "x"}), "must be a dict with a 'png_base64' string"),
    (lambda: from_payload({"png_base64": "@@@"}), "'png_base64' is not valid base64"),
    (lambda: from_payload({"png_base64": "aGVsbG8="}), "image payload is not a readable image"),
    (lambda: from_payload(to_payload(Image.new("RGB", (40, 40))), max_pixels=100),
     "image payload is 40x40, over the limit of 100 pixels"),
])
def test_bad_state_and_payloads_are_clear_errors(call, message):
    with pytest.raises(EditorError) as err:
        call()
    assert message in str(err.value)
