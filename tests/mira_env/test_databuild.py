"""``mira_env.data``: sessions -> MIRA-Editing records (resume, dedup, leakage, paraphrases), manifests."""

from __future__ import annotations

import json

import pytest

from mira_env.data.build import SETTINGS_FILE, STATE_FILE, SUMMARY_FILE, BuildConfig, BuildError, build_records
from mira_env.data.leakage import LeakageIndex
from mira_env.data.manifest import freeze, load_manifest, rank_key, select, write_eval_set
from mira_env.data.paraphrase import PROMPT_VERSION, ParaphraseConfig, Paraphraser, build_prompt, parse_answer
from mira_env.errors import ConfigError, TaskError
from mira_env.records import read_records, record_to_json
from mira_env.sessions import load_sessions
from mira_env.tasks import load_jsonl
from mira_env.tasks.benchmarks import load_magicbrush
from tests.chat_server import ChatServer
from tests.mira_env import benchmark_fixtures as fx


@pytest.fixture()
def sessions(tmp_path):
    return load_sessions(fx.magicbrush_turn_rows_file(tmp_path / "mb"))


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_records_round_trip_and_keep_the_session_order(tmp_path, sessions):
    out = tmp_path / "out"
    summary = build_records(sessions, BuildConfig(out=str(out), orders=("ordered", "shuffled"), progress=False))
    assert (summary.sessions, summary.sessions_kept, summary.records_written) == (2, 2, 4)
    records = {r.id: r for r in read_records(out)}
    assert sorted(records) == ["242679-reference-ordered", "242679-reference-shuffled", "30-reference-ordered",
                               "30-reference-shuffled"]
    ordered, shuffled = records["30-reference-ordered"], records["30-reference-shuffled"]
    assert ordered.complex_instruction == "Add a red hat to the dog, then make the sky pink."
    assert shuffled.complex_instruction == "Make the sky pink and add a red hat to the dog."
    for record in (ordered, shuffled):  # the atomic order stays the session's
        assert [s.instruction for s in record.trajectory] == ["Add a red hat to the dog.", "make the sky pink"]
        assert fx.tag(record.load_source()) == 10
        assert [fx.tag(record.load_step_image(i)) for i in range(2)] == [11, 12]
        assert fx.tag(record.load_target()) == 12 and fx.tag(record.load_final()) == 12
    assert shuffled.metadata["shuffled_order"] == [1, 0] and shuffled.metadata["order"] == "shuffled"
    assert ordered.source_path == shuffled.source_path  # the orders share one copy of the images
    # the writer round-trips: re-serialising a read record gives the line on disk
    for line in _lines(out / "records.jsonl"):
        assert record_to_json(records[line["id"]], out) == line
    # the records also load as tasks (complex instruction + atomic reference + target)
    tasks = load_jsonl(out / "records.jsonl")
    assert tasks.get("30-reference-ordered").atomic_instructions == ("Add a red hat to the dog.", "make the sky pink")


def test_resume_skips_finished_sessions_and_repairs_a_killed_one(tmp_path, sessions):
    out = tmp_path / "out"
    config = BuildConfig(out=str(out), orders=("ordered", "shuffled"), progress=False)
    build_records(sessions, config)
    before = (out / "records.jsonl").read_text()
    first = json.loads((out / SUMMARY_FILE).read_text())
    again = build_records(sessions, config)
    assert again.sessions_resumed == 2 and again.records_written == 4
    assert {**again.to_json(), "sessions_resumed": 0} == first  # a resumed build reports the whole build
    assert (out / "records.jsonl").read_text() == before
    # a kill after session 30's records but before its state line: the rebuild drops and rewrites them
    state = (out / STATE_FILE).read_text().splitlines()
    killed = [line for line in state if json.loads(line)["session"] == "30"]
    (out / STATE_FILE).write_text("".join(line + "\n" for line in state if line not in killed) + '{"sess')
    with (out / "records.jsonl").open("a") as handle:
        handle.write('{"id": "torn')
    third = build_records(sessions, config)
    assert third.sessions_resumed == 1 and third.records_written == 4
    assert sorted(r.id for r in read_records(out)) == sorted(json.loads(line)["id"] for line in before.splitlines())


def test_settings_must_match_on_resume(tmp_path, sessions):
    out = tmp_path / "out"
    build_records(sessions, BuildConfig(out=str(out), progress=False))
    with pytest.raises(BuildError, match=r"was built with other settings \(orders: \['ordered'\] -> \['shuffled'\]\)"):
        build_records(sessions, BuildConfig(out=str(out), orders=("shuffled",), progress=False))
    assert json.loads((out / SETTINGS_FILE).read_text())["orders"] == ["ordered"]


def test_duplicates_and_short_sessions_are_dropped_with_reasons(tmp_path, sessions):
    out = tmp_path / "out"
    twin = next(s for s in load_sessions(fx.magicbrush_turn_rows_file(tmp_path / "twin")) if s.id == "30")
    twin.id = "copy-of-30"
    summary = build_records([*sessions, twin], BuildConfig(out=str(out), min_turns=2, progress=False))
    assert summary.sessions_kept == 1
    assert summary.sessions_dropped == {"duplicate": 1, "too_few_turns": 1}
    states = {row["session"]: row for row in _lines(out / STATE_FILE)}
    assert states["copy-of-30"]["reason"] == "same source image and instructions as session '30'"
    assert states["242679"]["reason"] == "1 turn(s) < min_turns=2"
    assert json.loads((out / SUMMARY_FILE).read_text())["sessions_dropped"] == {"duplicate": 1, "too_few_turns": 1}


def test_leaking_sessions_are_dropped_or_stop_the_build(tmp_path, sessions):
    release = fx.write_magicbrush_release(tmp_path / "release")
    index = LeakageIndex.from_tasks(load_magicbrush(release))
    summary = build_records(sessions, BuildConfig(out=str(tmp_path / "a"), progress=False), leakage=index)
    assert summary.sessions_kept == 0 and summary.sessions_dropped == {"leak": 2}
    assert {leak["session"] for leak in summary.leaks} == {"30", "242679"}
    assert "same MagicBrush session img_id '30' as evaluation task 'magicbrush-30'" in \
        {leak["reason"] for leak in summary.leaks}
    with pytest.raises(BuildError, match=r"session '.+' leaks into the evaluation set: .*pass --on-leak drop"):
        build_records(sessions, BuildConfig(out=str(tmp_path / "b"), on_leak="error", progress=False), leakage=index)


def test_leakage_by_image_alone(tmp_path, sessions):
    release = fx.write_magicbrush_release(tmp_path / "release")
    tasks = load_magicbrush(release)
    index = LeakageIndex.from_tasks(tasks)
    index.magicbrush_ids.clear()
    index.sequences.clear()
    session = next(s for s in sessions if s.id == "30")
    reason = index.check(session, [session.load_source()])
    assert reason == "source image matches an image of evaluation task 'magicbrush-30' (same dHash)"
    assert index.check(session, [fx.image(200)]) is None


def test_build_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"orders=\('ordered', 'random'\) \(type tuple\) must list distinct values"):
        BuildConfig(out=str(tmp_path), orders="ordered,random")
    with pytest.raises(ConfigError, match=r"on_leak='warn' \(type str\) is not one of: 'drop', 'error'"):
        BuildConfig(out=str(tmp_path), on_leak="warn")


# ------------------------------------------------------------------------------------ paraphrases
def _paraphrases(body):
    request = body["messages"][0]["content"].rsplit("Request: ", 1)[1]
    return f"1. Please {request}\n- In other words: {request}\n\n{request.upper()}\n"


@pytest.fixture()
def llm():
    with ChatServer(answer=_paraphrases) as server:
        yield server


def test_paraphrases_are_cached_seeded_and_recorded(tmp_path, sessions, llm):
    cache = tmp_path / "paraphrases.jsonl"
    config = ParaphraseConfig(base_url=llm.base_url, model="llm", count=2, seed=7, cache_path=str(cache), api_key_env=None,
                              max_retries=0)
    out = tmp_path / "out"
    build_records(sessions, BuildConfig(out=str(out), progress=False), paraphraser=Paraphraser(config))
    record = next(r for r in read_records(out) if r.id == "30-reference-ordered")
    text = "Add a red hat to the dog, then make the sky pink."
    # numbering and bullets stripped, the copy of the request (in any case) dropped
    assert record.variants == [f"Please {text}", f"In other words: {text}"]
    body = next(r["body"] for r in llm.requests if "red hat" in r["body"]["messages"][0]["content"])
    assert body["model"] == "llm" and body["seed"] == 7 and body["temperature"] == 0.7
    assert body["messages"][0]["content"] == build_prompt(text, "ordered", 2)
    assert "must stay in the order" in body["messages"][0]["content"]
    assert len(llm.requests) == 2
    # a fresh paraphraser on the same cache sends nothing
    again = Paraphraser(config)
    assert again.paraphrase(text).cached and again.requests == 0
    cached = {row["instruction"]: row["variants"] for row in map(json.loads, cache.read_text().splitlines())}
    assert cached[text] == record.variants
    assert again.key(text, "ordered") != Paraphraser(ParaphraseConfig(**{**config.__dict__, "seed": 8})).key(
        text, "ordered")
    assert PROMPT_VERSION == "mira-paraphrase-v1"


def test_a_failing_endpoint_is_recorded_never_fatal(tmp_path, sessions, llm):
    llm.fail_first, llm.status = 10**9, 400  # every request refused
    config = ParaphraseConfig(base_url=llm.base_url, model="llm", api_key_env=None, max_retries=0)
    out = tmp_path / "out"
    summary = build_records(sessions, BuildConfig(out=str(out), progress=False), paraphraser=Paraphraser(config))
    assert summary.sessions_kept == 2 and summary.paraphrases == {"failed": 2}
    record = read_records(out)[0]
    assert record.variants == [] and record.metadata["paraphrase_error"].startswith("paraphrase request failed: ")
    assert "400" in record.metadata["paraphrase_error"]


def test_parse_answer_and_config_errors():
    assert parse_answer('1) "Paint it blue"\n2. paint   it blue\n\nRewrite 3: make it blue', "Paint it blue.", 5) == \
        ["make it blue"]
    assert parse_answer("Paint it red\nPAINT IT RED\n* Colour it red", "make it red", 2) == \
        ["Paint it red", "Colour it red"]
    with pytest.raises(ConfigError, match=r"paraphrase base_url='localhost:8000' \(type str\) must start with"):
        ParaphraseConfig(base_url="localhost:8000", model="m")
    with pytest.raises(ConfigError, match=r"paraphrase count=0 \(type int\) must be a positive int"):
        ParaphraseConfig(base_url="http://x", model="m", count=0)


# -------------------------------------------------------------------------------------- manifests
def test_the_shipped_manifest(tmp_path):
    manifest = load_manifest()
    assert manifest["name"] == "mira-eval-500"
    assert sum(source["count"] for source in manifest["sources"]) == 500
    assert [s["benchmark"] for s in manifest["sources"]] == ["magicbrush", "compbench"]


def test_manifest_selection_is_seeded_and_materialises(tmp_path):
    release = fx.write_magicbrush_release(tmp_path / "release")
    manifest = {"name": "tiny", "seed": "s1", "sources": [
        {"benchmark": "magicbrush", "options": {"split": "test", "mode": "multi_turn"}, "count": 1}]}
    chosen = select(manifest, {"magicbrush": release})
    expected = min(["magicbrush-30", "magicbrush-242679"], key=lambda i: rank_key("s1", "magicbrush", i))
    assert [t.id for t in chosen] == [expected]
    frozen = freeze(manifest, chosen)
    assert frozen["sources"][0]["ids"] == [expected]
    assert [t.id for t in select(frozen, {"magicbrush": release})] == [expected]
    path = write_eval_set(select({**manifest, "sources": [{**manifest["sources"][0], "count": 2}]},
                                 {"magicbrush": release}), tmp_path / "evalset")
    tasks = load_jsonl(path)
    task = tasks.get("magicbrush-30")
    assert task.instruction == "Add a red hat to the dog, then make the sky pink."
    assert fx.tag(task.load_source()) == 10 and fx.tag(task.load_target()) == 12
    assert task.metadata["benchmark"] == "magicbrush" and task.atomic_instructions[1] == "make the sky pink"
    with pytest.raises(TaskError, match=r"has 2 tasks, fewer than the manifest's 5"):
        select({**manifest, "sources": [{**manifest["sources"][0], "count": 5}]}, {"magicbrush": release})
    with pytest.raises(TaskError, match=r"manifest 'tiny' needs a local copy of 'magicbrush': pass magicbrush=PATH"):
        select(manifest, {})


def test_records_from_the_magicbrush_hub_parquet(tmp_path):
    pytest.importorskip("datasets")
    hub = fx.write_magicbrush_parquet(tmp_path / "hub", split="train")
    out = tmp_path / "out"
    summary = build_records(load_sessions(hub, split="train"), BuildConfig(out=str(out), progress=False))
    assert summary.records_written == 2
    record = next(r for r in read_records(out) if r.metadata["session_id"] == "30")
    assert fx.tag(record.load_source()) == 10 and [fx.tag(record.load_step_image(i)) for i in range(2)] == [11, 12]
