"""The MIRA prompt (build_messages), its answer format (format_action) and the strict parser."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from agents.prompt import (FORMAT_INSTRUCTIONS, STOP, SYSTEM_PROMPT, ParsedAction, PromptError, build_messages,
                           format_action, message_images, observation_to_state, parse_action, state_messages)


def _image(value: int, size=(8, 6)) -> Image.Image:
    return Image.new("RGB", size, (value, value, value))


# ------------------------------------------------------------------------------------------ parser
@pytest.mark.parametrize("text, action, reasoning", [
    ("<edit>add a red hat</edit>", "add a red hat", None),
    ("  <edit>  add   a\nred hat </edit>\n", "add a red hat", None),
    ("<think>the sky is grey</think>\n<edit>make the sky blue</edit>", "make the sky blue", "the sky is grey"),
    ("<think>\n  done already \n</think><STOP>", STOP, "done already"),
    ("<STOP>", STOP, None),
    ("  <stop> \n", STOP, None),
    ("<edit>replace \"cat\" with 'dog', 50% bigger!</edit>", "replace \"cat\" with 'dog', 50% bigger!", None),
])
def test_parse_well_formed(text, action, reasoning):
    parsed = parse_action(text)
    assert parsed == ParsedAction(action, True, None, reasoning, text)


@pytest.mark.parametrize("text, error", [
    ("", "empty output"),
    ("   \n\t", "empty output"),
    ("add a red hat", "expected <edit>...</edit> or <STOP>, got 'add a red hat'"),
    ("Sure! <edit>add a hat</edit>", "expected <edit>...</edit> or <STOP>, got 'Sure! <edit>add a hat</edit>'"),
    ("<edit>add a hat", "unclosed <edit>: missing </edit>"),
    ("<edit>add a hat</edit> and then <edit>x</edit>", "text after </edit>: 'and then <edit>x</edit>'"),
    ("<edit>   </edit>", "empty instruction inside <edit></edit>"),
    ("<edit>add <STOP> hat</edit>", "tag '<STOP>' inside <edit></edit>"),
    ("<edit>add <think>a</edit>", "tag '<think>' inside <edit></edit>"),
    ("<edit>add a h\x00at</edit>", "non-printable character '\\x00' in the instruction"),
    ("<edit>add a caf\u00e9</edit>", "non-printable character '\u00e9' in the instruction"),
    ("<STOP> now", "text after <STOP>: 'now'"),
    ("<think>hmm", "unclosed <think>: missing </think>"),
    ("<think>hmm</think>", "no <edit>...</edit> or <STOP> after </think>"),
    ("<think>a <edit>b</edit></think><STOP>", "tag '<edit>' inside <think></think>"),
    ("<EDIT>add a hat</EDIT>", "expected <edit>...</edit> or <STOP>, got '<EDIT>add a hat</EDIT>'"),
])
def test_parse_malformed(text, error):
    parsed = parse_action(text)
    assert (parsed.action, parsed.ok, parsed.error, parsed.text) == ("", False, error, text)


def test_parse_keeps_reasoning_of_malformed_answer():
    parsed = parse_action("<think>plan</think> add a hat")
    assert parsed.reasoning == "plan" and parsed.error == "expected <edit>...</edit> or <STOP>, got 'add a hat'"


@pytest.mark.parametrize("length, limit, ok", [(512, 512, True), (513, 512, False), (20, 10, False), (10, 10, True)])
def test_parse_over_long(length, limit, ok):
    instruction = ("a" * length)
    parsed = parse_action(f"<edit>{instruction}</edit>", max_length=limit)
    assert parsed.ok is ok
    assert parsed.action == (instruction if ok else "")
    assert parsed.error == (None if ok else f"instruction has {length} characters, over max_length={limit}")


def test_parse_long_garbage_preview_is_cut():
    parsed = parse_action("x" * 5000)
    assert parsed.error == f"expected <edit>...</edit> or <STOP>, got {'x' * 40 + '...'!r}"


@pytest.mark.parametrize("text, limit, message", [
    (None, 512, "text=None (type NoneType) must be the decoded model output (a str)"),
    (b"<STOP>", 512, "text=b'<STOP>' (type bytes) must be the decoded model output (a str)"),
    ("<STOP>", 0, "max_length=0 (type int) must be a positive int"),
    ("<STOP>", True, "max_length=True (type bool) must be a positive int"),
])
def test_parse_bad_arguments(text, limit, message):
    with pytest.raises(PromptError) as err:
        parse_action(text, max_length=limit)
    assert str(err.value) == message


# ------------------------------------------------------------------------------------------ format
@pytest.mark.parametrize("action, reasoning, expected", [
    ("add a hat", None, "<edit>add a hat</edit>"),
    ("  add   a\nhat ", None, "<edit>add a hat</edit>"),
    ("<STOP>", None, "<STOP>"),
    ("<stop>", "all done", "<think>all done</think>\n<STOP>"),
    ("make it red", " the box is blue ", "<think>the box is blue</think>\n<edit>make it red</edit>"),
    ("make it red", "   ", "<edit>make it red</edit>"),
])
def test_format_action_and_round_trip(action, reasoning, expected):
    text = format_action(action, reasoning)
    assert text == expected
    parsed = parse_action(text)
    assert parsed.ok and parsed.action == (STOP if action.lower() == "<stop>" else " ".join(action.split()))
    assert parsed.reasoning == (reasoning.strip() if reasoning and reasoning.strip() else None)


@pytest.mark.parametrize("action, reasoning, message", [
    ("", None, "action='' is empty; pass an atomic instruction or '<STOP>'"),
    (3, None, "action=3 (type int) must be a str (an atomic instruction or '<STOP>')"),
    ("<edit>x</edit>", None, "action='<edit>x</edit>' contains the tag '<edit>'; pass the bare instruction"),
    ("add", "see </think>", "reasoning contains the tag '</think>'; remove it"),
    ("add", 1.5, "reasoning=1.5 (type float) must be a str or None"),
])
def test_format_action_errors(action, reasoning, message):
    with pytest.raises(PromptError) as err:
        format_action(action, reasoning)
    assert str(err.value) == message


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

    code = ("import sys, agents.prompt, agents.vlm, agents.api, mira_env.tiny.vlm; "
            "heavy = sorted(m for m in ('torch', 'transformers', 'httpx', 'trl') if m in sys.modules); "
            "print(heavy)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
