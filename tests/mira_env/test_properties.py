"""Property tests (hypothesis, CI profile): loaders, action validation and the instruction space take
open-ended input and answer every case with a result or a named error, never a crash."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from mira_env import EditEnv, IdentityEditor, Task, TaskError, load_jsonl
from mira_env.actions import first_control_character
from mira_env.text_space import InstructionText

_FIELDS = st.sampled_from(["id", "instruction", "image", "source_img", "complex_instruction", "variants",
                           "atomic_instructions", "metadata", "target", "img_id", "turn_index"])
_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20)
                       | st.just("a.png") | st.just("../../etc/passwd") | st.just("/abs.png"),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                     max_size=3), max_leaves=8)
_LINES = st.one_of(st.dictionaries(_FIELDS, _VALUES, max_size=6).map(json.dumps), st.text(max_size=40),
                   st.binary(max_size=40).map(lambda b: b.decode("latin-1")))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    base = tmp_path_factory.mktemp("loader")
    Image.new("RGB", (8, 8), "red").save(base / "a.png")
    return base


@given(lines=st.lists(_LINES, max_size=5), raw=st.binary(max_size=30))
def test_load_jsonl_answers_any_file_with_tasks_or_a_task_error(folder, lines, raw):
    path = folder / "tasks.jsonl"
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass") + b"\n" + raw)
    try:
        tasks = load_jsonl(path)
    except TaskError as exc:
        assert str(exc)
        return
    for task in tasks:  # loading images may still fail, but only with a TaskError naming the record
        try:
            task.load_source()
        except TaskError as exc:
            assert "image" in str(exc)


_ENV = EditEnv(editor=IdentityEditor(), tasks=[Task(id="t", instruction="x", image=Image.new("RGB", (8, 8)))],
               height=8, width=8, max_instruction_length=64)


@given(st.text(max_size=80))
def test_action_validation_answers_every_text(text):
    instruction, stop, reason = _ENV.validate_action(text)
    assert reason in (None, "empty", "control_character", "too_long")
    if reason is None and not stop:
        assert instruction == " ".join(text.split()) and first_control_character(instruction) is None
        assert _ENV.action_space.contains(instruction)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn")), max_size=50))
def test_the_instruction_space_holds_text_in_any_language(text):
    space = InstructionText(50)
    assert space.contains(text)
    assert not space.contains(text + "\x07")
    assert space.contains(space.sample()) and set(space.sample()) <= set(string.printable)
