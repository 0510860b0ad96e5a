"""Benchmark loaders on tiny fixtures written in each benchmark's published layout."""

from __future__ import annotations

import json

import pytest

from mira_env.errors import TaskError
from mira_env.tasks.benchmarks import (
    BENCHMARKS,
    load_benchmark,
    load_compbench,
    load_gedit_bench,
    load_imgedit,
    load_magicbrush,
    magicbrush_sessions,
)
from tests.mira_env import benchmark_fixtures as fx


@pytest.fixture()
def release(tmp_path):
    return fx.write_magicbrush_release(tmp_path / "MagicBrush")


@pytest.fixture()
def hub(tmp_path):
    pytest.importorskip("datasets")
    return fx.write_magicbrush_parquet(tmp_path / "MagicBrush-hub")


def _check_multi_turn(tasks):
    assert sorted(t.id for t in tasks) == ["magicbrush-242679", "magicbrush-30"]  # sessions in file order
    first = tasks.get("magicbrush-30")
    assert first.instruction == "Add a red hat to the dog, then make the sky pink."
    assert first.atomic_instructions == ("Add a red hat to the dog.", "make the sky pink")
    assert fx.tag(first.load_source()) == 10 and fx.tag(first.load_target()) == 12
    assert first.metadata == {"benchmark": "magicbrush", "img_id": "30", "num_turns": 2}
    assert fx.tag(tasks.get("magicbrush-242679").load_target()) == 21


def test_magicbrush_json_release_multi_turn(release):
    _check_multi_turn(load_magicbrush(release))  # the parent of test/ works, so does test/ itself
    assert len(load_magicbrush(release / "test")) == 2


def test_magicbrush_json_release_per_turn(release):
    tasks = load_magicbrush(release, mode="turns")
    assert [t.id for t in tasks] == ["magicbrush-30-t1", "magicbrush-30-t2", "magicbrush-242679-t1"]
    second = tasks.get("magicbrush-30-t2")
    assert second.instruction == "make the sky pink"
    assert (fx.tag(second.load_source()), fx.tag(second.load_target())) == (11, 12)  # GT input of turn 2


def test_magicbrush_hub_parquet_orders_turns(hub):
    _check_multi_turn(load_magicbrush(hub, split="dev"))
    sessions = {s.id: s for s in magicbrush_sessions(hub, split="dev")}
    assert sessions["30"].metadata["turn_index"] == [1, 2]  # rows come last-turn first in the file


def test_magicbrush_hub_parquet_images_are_read_when_needed(hub):
    from mira_env.tasks import benchmarks

    benchmarks.row_group_column.cache_clear()
    session = {s.id: s for s in magicbrush_sessions(hub, split="dev")}["30"]
    assert benchmarks.row_group_column.cache_info().misses == 0  # no image column read yet
    assert session.source_image is None and session.source_loader is not None
    assert fx.tag(session.load_source()) == 10 and [fx.tag(t.load()) for t in session.turns] == [11, 12]
    assert benchmarks.row_group_column.cache_info().misses == 2  # one read per image column of the row group


def test_magicbrush_hub_parquet_unknown_split(hub):
    with pytest.raises(TaskError, match=r"no parquet files for split 'test' under .*; splits found: \['dev'\]"):
        load_magicbrush(hub, split="test")


def test_magicbrush_release_missing_field(release):
    path = release / "test" / "edit_sessions.json"
    data = json.loads(path.read_text())
    del data["30"][1]["output"]
    path.write_text(json.dumps(data))
    with pytest.raises(TaskError) as info:
        load_magicbrush(release)
    assert str(info.value) == ("edit_sessions.json['30'] turn 2: MagicBrush rows need the column(s) ['output']; the "
                               "row has ['input', 'instruction', 'mask']. Is this the MagicBrush release described "
                               "in docs/benchmarks.md?")


def test_magicbrush_bad_mode(release):
    with pytest.raises(TaskError, match=r"mode='single' \(type str\) is not one of: 'multi_turn', 'turns'"):
        load_magicbrush(release, mode="single")


def test_compbench_train_and_task_filter(tmp_path):
    pytest.importorskip("datasets")
    root = fx.write_compbench(tmp_path / "CompBench")
    tasks = load_compbench(root)
    assert [t.id for t in tasks] == ["compbench-add-001ca3cb/0/00003.png", "compbench-remove-02b72b8d/1/00016.png"]
    add = tasks[0]
    assert add.instruction == "Add a lamp on the left table."
    assert (fx.tag(add.load_source()), fx.tag(add.load_target())) == (100, 101)
    assert add.metadata == {"benchmark": "compbench", "task": "add", "image_path": "001ca3cb/0/00003.png",
                            "caption": "a lamp"}
    assert [t.id for t in load_compbench(root, tasks=["remove"])] == ["compbench-remove-02b72b8d/1/00016.png"]


def test_compbench_multi_turn_merges_the_turns(tmp_path):
    pytest.importorskip("datasets")
    root = fx.write_compbench(tmp_path / "CompBench")
    (task,) = load_compbench(root, split="multi_turn")
    assert task.id == "compbench-multi_turn_add-a1.png"
    assert task.instruction == "Add a book, then add a vase."
    assert task.atomic_instructions == ("add a book", "add a vase")
    assert (fx.tag(task.load_source()), fx.tag(task.load_target())) == (120, 122)


def test_gedit_bench_languages(tmp_path):
    pytest.importorskip("datasets")
    root = fx.write_gedit(tmp_path / "GEdit-Bench")
    english = load_gedit_bench(root)
    assert [t.id for t in english] == ["gedit-en-k1", "gedit-en-k2"]
    assert english[0].metadata == {"benchmark": "gedit", "key": "k1", "task_type": "color_alter", "language": "en",
                                   "intersection_exist": True}
    assert english[0].load_target() is None and fx.tag(english[0].load_source()) == 130
    (chinese,) = load_gedit_bench(root, language="cn")
    assert chinese.instruction == "把车变成红色。"
    raw = load_gedit_bench(root, raw_input=True)[0].load_source()
    assert raw.size == (64, 48) and fx.tag(raw) == 131
    with pytest.raises(TaskError, match=r"language='fr' \(type str\) is not one of: 'en', 'cn'"):
        load_gedit_bench(root, language="fr")


def test_imgedit_single_and_multi_turn(tmp_path):
    basic, multi, images = fx.write_imgedit(tmp_path / "ImgEdit")
    (task,) = load_imgedit(basic, image_root=images)
    assert task.id == "imgedit-1082" and task.instruction == "Change the shell to smooth."
    assert task.metadata["edit_type"] == "alter" and task.load_source().size == (32, 24)
    (turns,) = load_imgedit(multi, image_root=images)
    assert turns.instruction == ("Add embellishments to the plate, then replace the tomato with fruit, then change "
                                 "the plate's color.")
    assert len(turns.atomic_instructions) == 3 and turns.metadata["num_turns"] == 3


def test_imgedit_bad_item(tmp_path):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"7": {"id": "x.jpg", "edit_type": "add"}}))
    with pytest.raises(TaskError) as info:
        load_imgedit(path)
    assert str(info.value) == ("bench.json['7']: needs a 'prompt' (single-turn) or 'turn1', 'turn2', ... "
                               "(multi-turn); it has ['edit_type', 'id']")


def test_load_benchmark_by_name(release):
    assert sorted(BENCHMARKS) == ["compbench", "gedit", "imgedit", "magicbrush"]
    assert len(load_benchmark("magicbrush", release)) == 2
    with pytest.raises(TaskError, match=r"unknown benchmark 'emu'; known: \['compbench', 'gedit', 'imgedit', "
                                        r"'magicbrush'\]"):
        load_benchmark("emu", release)
