"""The model cache and the TORCH_HOME switch shared by the model-backed terms."""

from __future__ import annotations

import os
import threading

import pytest

from mira_env.rewards.devices import ModelCache, torch_home


def test_model_cache_builds_once_per_key_even_from_many_threads():
    cache, built = ModelCache(), []

    def build():
        built.append(1)
        return object()

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get(("m", "cpu"), build))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(built) == 1 and len({id(r) for r in results}) == 1
    assert cache.get(("m", "cuda"), build) is not results[0] and len(built) == 2
    cache.clear()
    cache.get(("m", "cpu"), build)
    assert len(built) == 3


def test_a_failing_build_caches_nothing():
    cache = ModelCache()

    def broken():
        raise RuntimeError("no weights")

    with pytest.raises(RuntimeError, match="no weights"):
        cache.get("k", broken)
    assert cache.get("k", lambda: "loaded") == "loaded"


def test_torch_home_is_set_inside_and_restored(tmp_path, monkeypatch):
    monkeypatch.delenv("TORCH_HOME", raising=False)
    with torch_home(tmp_path):
        assert os.environ["TORCH_HOME"] == str(tmp_path)
    assert "TORCH_HOME" not in os.environ
    monkeypatch.setenv("TORCH_HOME", "/previous")
    with pytest.raises(ValueError), torch_home(tmp_path):
        raise ValueError("a failed load")
    assert os.environ["TORCH_HOME"] == "/previous"
    with torch_home(None):
        assert os.environ["TORCH_HOME"] == "/previous"
