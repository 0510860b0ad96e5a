"""mira_env.runs: resolved settings, one writer per folder, atomic redacted writes, bounded names."""

from __future__ import annotations

import json
import os
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mira_env.redact import clear_secrets, register_secret
from mira_env.runs import (SLUG_MAX, RunFolder, RunFolderError, RunLock, atomic_write_text, inside, resolve_settings,
                           safe_name, slug, write_json)


@given(st.text(max_size=400))
def test_slug_is_one_bounded_safe_component(text):
    name = slug(text)
    assert 1 <= len(name) <= SLUG_MAX and name not in (".", "..")
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert all(ch.isascii() and (ch.isalnum() or ch in "._-") for ch in name)


@given(st.text(max_size=100), st.text(max_size=100))
def test_distinct_texts_keep_distinct_slugs(a, b):
    if a != b:
        assert slug(a) != slug(b)


def test_inside_and_safe_name_refuse_escapes(tmp_path):
    assert inside(tmp_path, "a/b.png") == (tmp_path / "a" / "b.png").resolve()
    with pytest.raises(RunFolderError, match=r"path '\.\./x' resolves to .*, outside .*; use a relative path"):
        inside(tmp_path, "../x")
    with pytest.raises(RunFolderError, match=r"name '\.\.' \(type str\) cannot be a file name"):
        safe_name("..")
    with pytest.raises(RunFolderError, match=r"1\.\.120 bytes"):
        safe_name("x" * 300)


def test_concurrent_atomic_writes_use_unique_temp_files(tmp_path):
    target = tmp_path / "metrics.json"
    errors = []

    def writer(n):
        try:
            for i in range(30):
                atomic_write_text(target, json.dumps({"writer": n, "i": i}))
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert set(json.loads(target.read_text())) == {"writer", "i"}  # always one whole file
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temp file left behind


def test_writes_are_redacted(tmp_path):
    register_secret("s3cr3t-value-99")
    try:
        write_json(tmp_path / "a.json", {"error": "bad key s3cr3t-value-99", "api_key": "anything",
                                         "url": "https://bob:pw@host/v1"})
        atomic_write_text(tmp_path / "b.txt", "token s3cr3t-value-99")
    finally:
        clear_secrets()
    assert json.loads((tmp_path / "a.json").read_text()) == {"error": "bad key ***", "api_key": "***",
                                                               "url": "https://***@host/v1"}
    assert (tmp_path / "b.txt").read_text() == "token ***"


def test_the_lock_is_reentrant_in_a_process(tmp_path):
    first = RunLock(tmp_path).acquire()
    second = RunLock(tmp_path).acquire()
    second.release()
    assert first.held
    first.release()
    with RunLock(tmp_path):
        pass


def _results(folder):
    (folder / "episodes.jsonl").write_text('{"agent": "a"}\n')


def test_resolve_settings_refuses_restarts_and_merges(tmp_path):
    keys = ("max_steps",)
    resolve_settings(tmp_path, {"max_steps": 5, "agents": ["a"]}, keys=keys, mergeable=("agents",))
    _results(tmp_path)
    merged = resolve_settings(tmp_path, {"max_steps": 5, "agents": ["b"]}, keys=keys, mergeable=("agents",))
    assert merged["agents"] == ["a", "b"]
    with pytest.raises(RunFolderError, match=r"holds results made with other settings \(max_steps=5 -> 3\)"):
        resolve_settings(tmp_path, {"max_steps": 3, "agents": ["a"]}, keys=keys)
    resolve_settings(tmp_path, {"max_steps": 3, "agents": ["a"]}, keys=keys, restart=True)
    assert not (tmp_path / "episodes.jsonl").exists()
    assert json.loads((tmp_path / "run.json").read_text())["max_steps"] == 3


def test_unreadable_or_missing_settings_with_results_are_refused(tmp_path):
    _results(tmp_path)
    with pytest.raises(RunFolderError, match=r"holds results but it has no settings record \(run.json\)"):
        resolve_settings(tmp_path, {"max_steps": 3}, keys=("max_steps",))
    (tmp_path / "run.json").write_text("{torn")
    with pytest.raises(RunFolderError, match=r"holds results but its settings record .* is unreadable"):
        resolve_settings(tmp_path, {"max_steps": 3}, keys=("max_steps",))


def test_a_failed_first_run_leaves_no_folder_but_a_resumable_one_stays(tmp_path):
    fresh = tmp_path / "fresh"
    with pytest.raises(RuntimeError):
        with RunFolder(fresh, {"max_steps": 3}, keys=("max_steps",)):
            raise RuntimeError("the editor failed to load")
    assert not fresh.exists()
    kept = tmp_path / "kept"
    with pytest.raises(RuntimeError):
        with RunFolder(kept, {"max_steps": 3}, keys=("max_steps",)):
            _results(kept)
            raise RuntimeError("killed half way")
    assert (kept / "episodes.jsonl").is_file() and (kept / "run.json").is_file()
    with RunFolder(kept, {"max_steps": 3}, keys=("max_steps",)) as folder:  # resumable, lock released
        assert folder.settings == {"max_steps": 3}
    assert os.path.exists(kept / ".lock")
