"""The MIRA prompt (build_messages), its answer format (format_action) and the strict parser."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mira_env.agents.prompt import (FORMAT_INSTRUCTIONS, SYSTEM_PROMPT, PromptError, build_messages, message_images,
                                    observation_to_state, state_messages)


def _image(value: int, size=(8, 6)) -> Image.Image:
    return Image.new("RGB", size, (value, value, value))


# ------------------------------------------------------------------------------------------ prompt
def test_build_messages_shows_both_images_in_order_and_numbered_history():
    source, current = _image(10), _image(200)
    messages = build_messages("make it pop", source, current, ["add a hat", "make the sky blue"])
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"] == [{"type": "text", "text": SYSTEM_PROMPT}]
    parts = messages[1]["content"]
    assert [p["type"] for p in parts] == ["text", "image", "text", "image", "text"]
    assert parts[0]["text"] == "Source image (I0):" and parts[2]["text"] == "Current image (It):"
    assert parts[1]["image"].getpixel((0, 0)) == (10, 10, 10)
    assert parts[3]["image"].getpixel((0, 0)) == (200, 200, 200)
    assert message_images(messages) == [parts[1]["image"], parts[3]["image"]]
    text = parts[4]["text"]
    assert text.startswith("Instruction (C): make it pop\n\n")
    assert "Edits applied so far:\n1. add a hat\n2. make the sky blue\n\n" in text
    assert text.endswith(FORMAT_INSTRUCTIONS)


def test_build_messages_empty_history_and_custom_system_prompt():
    messages = build_messages(" a task ", _image(1), _image(2), [], system_prompt="be brief")
    assert messages[0]["content"][0]["text"] == "be brief"
    assert "Instruction (C): a task\n\nEdits applied so far: none\n\n" in messages[1]["content"][4]["text"]
    assert [m["role"] for m in build_messages("x", _image(1), _image(2), system_prompt="")] == ["user"]


def test_build_messages_accepts_uint8_arrays():
    array = np.zeros((5, 7, 3), np.uint8)
    array[..., 0] = 99
    messages = build_messages("x", array, np.full((5, 7), 7, np.uint8), [])
    source, current = message_images(messages)
    assert source.size == (7, 5) and source.mode == "RGB" and source.getpixel((3, 2)) == (99, 0, 0)
    assert current.getpixel((0, 0)) == (7, 7, 7)


@pytest.mark.parametrize("kwargs, message", [
    (dict(instruction=""), "instruction='' (type str) must be a non-empty str"),
    (dict(instruction=None), "instruction=None (type NoneType) must be a non-empty str"),
    (dict(source_image="img.png"), "source_image='img.png' (type str) must be a PIL image or a uint8 numpy array"),
    (dict(current_image=np.zeros((4, 4, 3), np.float32)),
     "current_image array has dtype float32; expected uint8 (0-255). Convert with np.clip(x, 0, 255).astype(np.uint8)"),
    (dict(current_image=np.zeros((4, 4, 4), np.uint8)),
     "current_image array has shape (4, 4, 4); expected (H, W, 3) or (H, W)"),
    (dict(history="add a hat\nadd a cat"),
     "history='add a hat\\nadd a cat' (type str) is a str; pass a list of atomic instructions "
     "(observation_to_state splits an observation's '\\n'-joined history)"),
    (dict(history=["ok", 3]), "history[1]=3 (type int) must be a str"),
    (dict(system_prompt=5), "system_prompt=5 (type int) must be a str or None"),
])
def test_build_messages_errors(kwargs, message):
    args = dict(instruction="x", source_image=_image(1), current_image=_image(2), history=[])
    args.update(kwargs)
    system = args.pop("system_prompt", None)
    with pytest.raises(PromptError) as err:
        build_messages(**args, system_prompt=system)
    assert str(err.value) == message


def test_observation_to_state_from_real_env(env_observations):
    fresh, _, stepped = env_observations
    instruction, source, current, history = observation_to_state(fresh)
    assert instruction == fresh["instruction"] and history == []
    assert np.array_equal(np.asarray(source), fresh["source"]) and np.array_equal(np.asarray(current), fresh["current"])
    assert observation_to_state(stepped)[3] == ["make the square red", "add a circle"]
    text = state_messages(stepped)[1]["content"][4]["text"]
    assert "1. make the square red\n2. add a circle" in text


def test_observation_to_state_errors():
    with pytest.raises(PromptError) as err:
        observation_to_state({"instruction": "x", "source": np.zeros((2, 2, 3), np.uint8)})
    assert str(err.value) == "observation is missing ['current', 'history']; it has keys ['instruction', 'source']"
    with pytest.raises(PromptError) as err:
        observation_to_state([1])
    assert str(err.value) == "observation=[1] (type list) must be an EditEnv observation dict"


def test_policy_modules_import_without_torch():
    import subprocess
    import sys

    code = ("import sys, mira_env.agents.prompt, mira_env.agents.vlm, mira_env.agents.api, mira_env.tiny.vlm; "
            "heavy = sorted(m for m in ('torch', 'transformers', 'httpx', 'trl') if m in sys.modules); "
            "print(heavy)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
