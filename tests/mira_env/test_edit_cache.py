"""DedupEditor / EditCache: identical edits run once per call and, with a cache, once across calls."""

from __future__ import annotations

import numpy as np
import pytest

from mira_env.editors.base import EDIT_STATUS_KEY, STATE_KEY, EditorInfo
from mira_env.editors.cache import DedupEditor, EditCache, edit_key
from mira_env.editors.state import with_state
from mira_env.errors import ConfigError, EditorError
from mira_env.shapes.editor import ShapesEditor
from tests.mira_env.test_remote_editor import same, shapes_batch


class CountingShapes(ShapesEditor):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []

    def edit(self, images, instructions, seeds):
        self.seen.append(len(images))
        return super().edit(images, instructions, seeds)


def group_batch():
    """A GRPO-like first turn: 2 tasks x G=3, every rollout of a task proposing the same first edit."""
    images, texts, seeds = shapes_batch(2)
    return ([images[0]] * 3 + [images[1]] * 3, [texts[0]] * 3 + [texts[1]] * 3, [seeds[0]] * 3 + [seeds[1]] * 3)


def test_identical_edits_in_one_call_run_once():
    images, texts, seeds = group_batch()
    inner = CountingShapes()
    editor = DedupEditor(inner)
    outputs = editor.edit(images, texts, seeds)
    assert inner.seen == [2]
    expected = ShapesEditor().edit(images, texts, seeds)
    assert all(same(a, b) for a, b in zip(outputs, expected))
    assert len({id(o) for o in outputs}) == 6 and outputs[0].info is not outputs[1].info  # own copies
    assert editor.stats() == {"items": 6, "executed": 2, "saved": 4, "saved_rate": 4 / 6, "cache_hits": 0,
                              "cache_hit_rate": 0.0}


def test_memory_cache_across_calls_and_hit_rate():
    images, texts, seeds = group_batch()
    inner = CountingShapes()
    editor = DedupEditor(inner, cache=EditCache())
    first = editor.edit(images, texts, seeds)
    second = editor.edit(images, texts, seeds)
    assert inner.seen == [2]  # the second call was served from the cache
    assert all(same(a, b) for a, b in zip(first, second))
    assert editor.cache.hits == 2 and editor.cache.misses == 2 and editor.cache.hit_rate == 0.5


def test_disk_cache_survives_a_new_process_object(tmp_path):
    images, texts, seeds = shapes_batch(3)
    DedupEditor(ShapesEditor(), cache=EditCache(path=tmp_path)).edit(images, texts, seeds)
    assert len(list(tmp_path.glob("*.png"))) == 3 and not list(tmp_path.glob("*.tmp"))
    inner = CountingShapes()
    again = DedupEditor(inner, cache=EditCache(path=tmp_path)).edit(images, texts, seeds)
    assert inner.seen == []
    assert all(same(a, b) for a, b in zip(again, ShapesEditor().edit(images, texts, seeds)))
    assert again[0].info[STATE_KEY] and EDIT_STATUS_KEY in again[0].info


def test_key_covers_state_seed_instruction_settings_and_editor():
    images, texts, _ = shapes_batch(1)
    image = images[0]
    base = edit_key(image, texts[0], 1)
    other_state = with_state(image, {"objects": []})
    assert len({base, edit_key(other_state, texts[0], 1), edit_key(image, texts[0], 2),
                edit_key(image, texts[0] + "!", 1), edit_key(image, texts[0], 1, {"steps": 4}),
                edit_key(image, texts[0], 1, editor="flux")}) == 6
    assert edit_key(image.copy(), texts[0], 1) == base


class FlakyEditor:
    def __init__(self) -> None:
        self.info = EditorInfo(name="flaky")
        self.calls = 0

    def edit(self, images, instructions, seeds):
        self.calls += 1
        return [EditorError("remote edit failed: timeout") if self.calls == 1 else image.copy() for image in images]


def test_failures_are_not_cached():
    images, texts, seeds = shapes_batch(1)
    inner = FlakyEditor()
    editor = DedupEditor(inner, cache=EditCache())
    [failed] = editor.edit(images, texts, seeds)
    assert isinstance(failed, EditorError)
    [ok] = editor.edit(images, texts, seeds)
    assert inner.calls == 2 and np.array_equal(np.asarray(ok), np.asarray(images[0]))


def test_nondeterministic_editor_refused():
    class Sampler:
        info = EditorInfo(name="sampler", deterministic=False)

        def edit(self, images, instructions, seeds):
            return images

    with pytest.raises(ConfigError, match="'sampler' is not deterministic"):
        DedupEditor(Sampler())
