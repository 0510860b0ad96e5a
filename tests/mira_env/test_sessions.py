"""Multi-turn sessions: readers (MagicBrush turn rows, the generic JSONL, the release), candidates from a
``mira run`` folder, and the merging of turns into complex instructions."""

from __future__ import annotations

import json

import pytest

from mira_env.data.merge import clause, merge, merge_ordered, merge_shuffled, shuffled_order
from mira_env.errors import ConfigError, TaskError
from mira_env.sessions import REFERENCE, attach_episode_candidates, load_sessions, read_sessions_jsonl
from tests.mira_env import benchmark_fixtures as fx


def test_magicbrush_turn_rows_group_into_ordered_sessions(tmp_path):
    sessions = {s.id: s for s in load_sessions(fx.magicbrush_turn_rows_file(tmp_path))}
    assert sorted(sessions) == ["242679", "30"]
    session = sessions["30"]
    assert session.instructions == ["Add a red hat to the dog.", "make the sky pink"]
    assert fx.tag(session.load_source()) == 10
    assert [fx.tag(turn.load()) for turn in session.turns] == [11, 12]
    assert session.metadata == {"source": "magicbrush", "turn_index": [1, 2]}
    (reference,) = session.all_candidates()
    assert reference.name == REFERENCE and len(reference.steps) == 2


def test_magicbrush_release_loads_as_sessions(tmp_path):
    root = fx.write_magicbrush_release(tmp_path)
    sessions = load_sessions(root / "test" / "edit_sessions.json")
    assert [s.id for s in sessions] == ["30", "242679"]
    assert [fx.tag(t.load()) for t in sessions[0].turns] == [11, 12]


def _write_generic(tmp_path, rows):
    for name, value in (("s.png", 1), ("t1.png", 2), ("t2.png", 3), ("c1.png", 4), ("c2.png", 5)):
        fx.image(value).save(tmp_path / name)
    path = tmp_path / "sessions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


GENERIC = {"id": "s1", "source_image": "s.png",
           "turns": [{"instruction": "add a hat", "image": "t1.png"}, {"instruction": "paint it blue", "image": "t2.png"}],
           "candidates": [{"name": "flux", "steps": [{"instruction": "add a hat", "image": "c1.png"},
                                                     {"instruction": "paint it blue", "image": "c2.png"}]}],
           "metadata": {"source": "annotators"}}


def test_generic_sessions_with_candidates(tmp_path):
    (session,) = read_sessions_jsonl(_write_generic(tmp_path, [GENERIC]))
    assert session.metadata == {"source": "annotators"}
    names = [c.name for c in session.all_candidates()]
    assert names == [REFERENCE, "flux"]
    assert [fx.tag(step.load()) for step in session.all_candidates()[1].steps] == [4, 5]


@pytest.mark.parametrize("row, message", [
    ({**GENERIC, "turns": []}, "sessions.jsonl:1: field 'turns' must be a non-empty list of {instruction, image} "
                               "objects, got [] (type list)"),
    ({**GENERIC, "source_image": ""}, "sessions.jsonl:1: field 'source_image' must be a non-empty string, got '' "
                                      "(type str)"),
    ({**GENERIC, "turns": [{"instruction": " ", "image": "t1.png"}]}, "session 's1': turn 1 has an empty instruction "
                                                                       "(' ' (type str))"),
    ({**GENERIC, "candidates": [{"name": "x", "steps": [{"instruction": "add a hat"}]}]},
     "sessions.jsonl:1: candidate 'x': every step needs an 'image'"),
    ({"id": "a", "prompt": "x"}, "sessions.jsonl:1: not a session row; give either a generic session ({id, "
                                 "source_image, turns}) or a MagicBrush turn row ({img_id, turn_index, source_img, "
                                 "instruction, target_img}), one kind per file"),
])
def test_generic_session_errors(tmp_path, row, message):
    with pytest.raises(TaskError) as info:
        read_sessions_jsonl(_write_generic(tmp_path, [row]))
    assert str(info.value) == message


def test_duplicate_session_ids_and_turn_indices(tmp_path):
    with pytest.raises(TaskError, match=r"session id 's1' appears twice; session ids must be unique"):
        read_sessions_jsonl(_write_generic(tmp_path, [GENERIC, GENERIC]))
    rows = [{"img_id": "7", "turn_index": 1, "source_img": "s.png", "instruction": "a", "target_img": "t1.png"},
            {"img_id": "7", "turn_index": 1, "source_img": "s.png", "instruction": "b", "target_img": "t2.png"}]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(TaskError, match=r"session '7': turn_index values \[1, 1\] repeat \(rows.jsonl:1\)"):
        read_sessions_jsonl(path)


def test_candidates_from_a_mira_run_folder(tmp_path):
    (session,) = read_sessions_jsonl(_write_generic(tmp_path, [{**GENERIC, "candidates": []}]))
    run = tmp_path / "run"
    (run / "img").mkdir(parents=True)
    fx.image(7).save(run / "img" / "step_01.png")
    episodes = [
        {"agent": "oracle", "task_id": "s1", "group_index": 0, "member_index": 1,
         "steps": [{"instruction": "add a hat", "image": "img/step_01.png", "valid": True, "stop": False},
                   {"instruction": "<STOP>", "image": "img/step_01.png", "valid": True, "stop": True}]},
        {"agent": "oracle", "task_id": "other", "group_index": 0, "member_index": 0, "steps": []},
        {"agent": "oracle", "task_id": "s1", "group_index": 0, "member_index": 2,
         "steps": [{"instruction": "add a hat", "valid": True, "stop": False}]},
    ]
    (run / "episodes.jsonl").write_text("".join(json.dumps(e) + "\n" for e in episodes))
    assert attach_episode_candidates([session], run) == {"attached": 1, "unmatched": 1, "without_images": 1}
    candidate = session.candidates[0]
    assert candidate.name == "oracle/g0_m1" and [s.instruction for s in candidate.steps] == ["add a hat"]
    assert fx.tag(candidate.steps[0].load()) == 7


# ------------------------------------------------------------------------------------------ merging
def test_merge_in_order():
    assert merge_ordered(["add a hat to the dog", "Make the sky pink.", "remove the car"]) == \
        "Add a hat to the dog, then make the sky pink, then remove the car."
    assert merge_ordered(["Put NYC on the sign"]) == "Put NYC on the sign."
    assert clause("NYC skyline at night!") == "NYC skyline at night"


def test_merge_shuffled_is_seeded_and_never_the_identity():
    turns = ["add a hat", "make the sky pink", "remove the car"]
    first = merge_shuffled(turns, seed=3, key="s1")
    assert first == merge_shuffled(turns, seed=3, key="s1")
    for key in ("a", "b", "c", "d"):
        assert shuffled_order(3, 0, key) != [0, 1, 2]
        assert sorted(shuffled_order(3, 0, key)) == [0, 1, 2]
    assert shuffled_order(1, 0, "x") == [0]
    order = shuffled_order(3, 3, "s1")
    expected = [["add a hat", "make the sky pink", "remove the car"][i] for i in order]
    assert first == (expected[0][0].upper() + expected[0][1:] + ", " + expected[1] + " and " + expected[2] + ".")
    assert merge(["a b"], "shuffled", seed=0, key="k") == "A b."


def test_merge_errors():
    with pytest.raises(ConfigError, match=r"order='random' \(type str\) is not one of: 'ordered', 'shuffled'"):
        merge(["a"], "random")
    with pytest.raises(ConfigError, match=r"turn\(s\) \[1\] are empty; every turn needs an instruction"):
        merge(["a", " . "])


def test_sessions_as_a_task_file_for_re_execution(tmp_path):
    from mira_env.sessions import write_session_tasks
    from mira_env.tasks import load_jsonl

    sessions = load_sessions(fx.magicbrush_turn_rows_file(tmp_path / "mb"))
    tasks = load_jsonl(write_session_tasks(sessions, tmp_path / "tasks"))
    task = tasks.get("30")
    assert task.instruction == "Add a red hat to the dog, then make the sky pink."
    assert task.atomic_instructions == ("Add a red hat to the dog.", "make the sky pink")
    assert fx.tag(task.load_source()) == 10 and fx.tag(task.load_target()) == 12
