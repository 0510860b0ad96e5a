"""mira_env.actions: the one definition of the policy's answer format (<edit>, <STOP>, <think>)."""

from __future__ import annotations

import pytest

from mira_env.actions import (STOP, ActionFormatError, ParsedAction, extract_edit, format_action, is_stop,
                              is_well_formed, parse_action)


# ------------------------------------------------------------------------------------------ parser
@pytest.mark.parametrize("text, action, reasoning", [
    ("<edit>add a red hat</edit>", "add a red hat", None),
    ("  <edit>  add   a\nred hat </edit>\n", "add a red hat", None),
    ("<think>the sky is grey</think>\n<edit>make the sky blue</edit>", "make the sky blue", "the sky is grey"),
    ("<think>\n  done already \n</think><STOP>", STOP, "done already"),
    ("<STOP>", STOP, None),
    ("  <stop> \n", STOP, None),
    ("<edit>replace \"cat\" with 'dog', 50% bigger!</edit>", "replace \"cat\" with 'dog', 50% bigger!", None),
    ("<edit>add a caf\u00e9 sign</edit>", "add a caf\u00e9 sign", None),
    ("<edit>\u628a\u5929\u7a7a\u53d8\u6210\u6a59\u8272</edit>", "\u628a\u5929\u7a7a\u53d8\u6210\u6a59\u8272", None),
    ("<edit>make the \u201cbig\u201d sign red \u2014 now</edit>", "make the \u201cbig\u201d sign red \u2014 now", None),
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
    ("<edit>add a h\x00at</edit>", "control character '\\x00' in the instruction"),
    ("<edit>add a h\u200bat</edit>", "control character '\\u200b' in the instruction"),
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
    with pytest.raises(ActionFormatError) as err:
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
    with pytest.raises(ActionFormatError) as err:
        format_action(action, reasoning)
    assert str(err.value) == message


@pytest.mark.parametrize("text, expected", [
    ("<edit>add a hat</edit>", "add a hat"),
    ("Sure. <edit> add  a\nhat </edit> then more", "add a hat"),
    ("<STOP>", None),
    ("<edit>  </edit>", None),
    ("nothing here", None),
])
def test_extract_edit_is_lenient(text, expected):
    assert extract_edit(text) == expected


@pytest.mark.parametrize("text", ["<STOP>", " <stop> ", "<Stop>\n"])
def test_is_stop(text):
    assert is_stop(text) and not is_stop("<edit>" + text + "</edit>")


def test_is_well_formed_is_the_parser():
    for text in ("<edit>a</edit>", "<EDIT>a</EDIT>", "<edit>a</edit>x", "<think>x</think>", "<STOP>"):
        assert is_well_formed(text) is parse_action(text).ok
    assert is_well_formed(None) is False
