"""RemoteEditor against the editor service (threaded backend: no Ray, fast): exactness, splitting, faults.

The Ray Serve backend runs the same EditService; tests/mira_env/test_serve.py covers it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("httpx")

from mira_env.editors import make_editor
from mira_env.editors.base import EDIT_STATUS_KEY, STATE_KEY
from mira_env.editors.remote import RemoteEditor
from mira_env.env import EditEnv
from mira_env.errors import ConfigError, EditorError
from mira_env.serve import ServeConfig, start_editor_service
from mira_env.shapes.editor import ShapesEditor
from mira_env.shapes.env import make_shapes_env

ROOT = Path(__file__).resolve().parents[2]


def shapes_batch(count: int = 6):
    """Source images of ``count`` shapes tasks with each task's first two atomic instructions."""
    env = make_shapes_env(num_tasks=count, resolution=64)
    images, texts = [], []
    for index in range(count):
        env.reset(seed=index, options={"task": index})
        program = env.task.metadata["program"]
        images.append(env.task.image)
        texts.append(program[0]["instruction"])
    return images, texts, list(range(100, 100 + count))


def same(a, b) -> bool:
    return (np.array_equal(np.asarray(a), np.asarray(b)) and a.info.get(STATE_KEY) == b.info.get(STATE_KEY)
            and a.info.get(EDIT_STATUS_KEY) == b.info.get(EDIT_STATUS_KEY))


@pytest.fixture(scope="module")
def shapes_service():
    with start_editor_service(ServeConfig(editor="shapes", backend="threaded", port=0)) as running:
        yield running


@pytest.mark.parametrize("encoding", ["raw", "png"])
def test_remote_edit_is_pixel_exact_with_state_and_status(shapes_service, encoding):
    images, texts, seeds = shapes_batch(6)
    remote = RemoteEditor(shapes_service.url, concurrency=3, image_encoding=encoding)
    local = ShapesEditor()
    expected = local.edit(images, texts, seeds)
    got = remote.edit(images, texts, seeds)
    assert all(same(a, b) for a, b in zip(got, expected))
    # the edited images carry their scene: a second turn through the service matches a second local turn
    again = remote.edit(got, texts, seeds)
    assert all(same(a, b) for a, b in zip(again, local.edit(expected, texts, seeds)))
    assert remote.info.name == "remote:shapes" and remote.info.deterministic
    assert remote.requests == 6  # two calls x 3 chunks


def test_raw_payload_round_trip_and_errors():
    from mira_env.editors.state import from_payload, to_payload

    images, _, _ = shapes_batch(1)
    payload = to_payload(images[0], "raw")
    assert set(payload) == {"raw_base64", "width", "height", "state"} and payload["width"] == 64
    back = from_payload(payload)
    assert np.array_equal(np.asarray(back), np.asarray(images[0])) and back.info[STATE_KEY] == images[0].info[STATE_KEY]
    with pytest.raises(EditorError, match="raw image payload holds 12288 bytes; 64x32 RGB needs 6144"):
        from_payload({**payload, "height": 32})
    with pytest.raises(EditorError, match="over the limit of 100 pixels"):
        from_payload(payload, max_pixels=100)
    with pytest.raises(EditorError, match=r"image encoding='jpeg' \(type str\) is not one of: 'png', 'raw'"):
        to_payload(images[0], "jpeg")


def test_batch_split_into_concurrent_chunks(shapes_service):
    images, texts, seeds = shapes_batch(7)
    remote = RemoteEditor(shapes_service.url, concurrency=4, chunk_size=2)
    before = shapes_service.service.calls
    outputs = remote.edit(images, texts, seeds)
    assert remote.requests == 4 and shapes_service.service.calls - before == 4
    assert all(same(a, b) for a, b in zip(outputs, ShapesEditor().edit(images, texts, seeds)))


def test_remote_spec_in_the_environment_matches_in_process(shapes_service):
    local_env = make_shapes_env(num_tasks=3, resolution=64)
    remote_env = EditEnv(editor=f"remote:{shapes_service.url}", tasks=local_env.tasks, config=local_env.config)
    for env in (local_env, remote_env):
        env.reset(seed=3, options={"task": 1})
    for step in local_env.task.metadata["program"][:3]:
        a = local_env.step(step["instruction"])
        b = remote_env.step(step["instruction"])
        assert np.array_equal(a[0]["current"], b[0]["current"])
        assert a[4]["state"] == b[4]["state"] and b[4].get("editor_error") is None


def test_per_call_settings_are_forwarded_and_checked():
    config = ServeConfig(editor="tests.mira_env.serve_editors:SettingsEditor", backend="threaded", port=0)
    images, texts, seeds = shapes_batch(2)
    with start_editor_service(config) as running:
        remote = RemoteEditor(running.url, settings={"strength": 5}, concurrency=1)
        out = remote.edit(images, texts, seeds)
        assert np.array_equal(np.asarray(out[0]), np.minimum(np.asarray(images[0]).astype(int) + 5, 255))
        assert running.service.editor.calls == [(2, 5)]
        [error] = remote.edit(images[:1], texts[:1], seeds[:1], bogus=1)
        assert isinstance(error, EditorError)
        assert "takes no per-call settings ['bogus']; its edit() accepts: strength" in str(error)


def test_auth_token_required_and_redacted(monkeypatch):
    monkeypatch.setenv("MIRA_TEST_EDITOR_TOKEN", "tok-remote-0123456789")
    config = ServeConfig(editor="identity", backend="threaded", port=0, token_env="MIRA_TEST_EDITOR_TOKEN")
    with start_editor_service(config) as running:
        with pytest.raises(EditorError, match="refused the auth token") as info:
            RemoteEditor(running.url, token="wrong-token-xyz", max_retries=0)
        assert "wrong-token-xyz" not in str(info.value)
        ok = RemoteEditor(running.url, token_env="MIRA_TEST_EDITOR_TOKEN")
        assert ok.server_info["auth"] is True
        assert "tok-remote" not in repr(ok)


def test_request_bounds_answer_413():
    config = ServeConfig(editor="shapes", backend="threaded", port=0, max_items=2, max_pixels=32 * 32)
    images, texts, seeds = shapes_batch(3)
    with start_editor_service(config) as running:
        remote = RemoteEditor(running.url, max_retries=0)
        assert remote.chunk_size == 2  # learnt from /info
        outputs = remote.edit(images, texts, seeds)  # 64x64 > 32x32 pixels
        assert all(isinstance(o, EditorError) for o in outputs)
        assert "over the limit of 1024 pixels" in str(outputs[0]) and "HTTP 413" in str(outputs[0])


def test_incompatible_or_missing_server():
    from mira_env.serve.threaded import ThreadedServer

    with ThreadedServer(lambda *a: (200, {"service": "mira-editor", "api_version": "2.0"})) as server:
        with pytest.raises(EditorError, match="speaks editor API 2.0, this client speaks 1.2"):
            RemoteEditor(server.url)
    with ThreadedServer(lambda *a: (200, {"hello": "world"})) as server:
        with pytest.raises(EditorError, match="is not a mira editor service"):
            RemoteEditor(server.url)
    with pytest.raises(EditorError, match="no editor service answered /info"):
        RemoteEditor(server.url, max_retries=0, info_timeout_s=1)


def test_server_gone_gives_per_item_errors_that_the_env_records():
    local_env = make_shapes_env(num_tasks=2, resolution=64)
    running = start_editor_service(ServeConfig(editor="shapes", backend="threaded", port=0))
    env = EditEnv(editor=RemoteEditor(running.url, max_retries=1, backoff_s=0.01), tasks=local_env.tasks,
                  config=local_env.config)
    env.reset(seed=0, options={"task": 0})
    running.stop()
    obs, reward, terminated, truncated, info = env.step(env.task.metadata["program"][0]["instruction"])
    assert "remote edit failed" in info["editor_error"] and "could not connect" in info["editor_error"]
    assert np.array_equal(obs["current"], obs["source"])  # nothing applied
    assert not terminated


def start_subprocess_server(*flags: str) -> tuple[subprocess.Popen, str]:
    """``mira serve editor --backend threaded --port 0 FLAGS`` in a subprocess; its URL from its first line."""
    command = [sys.executable, "-m", "mira_env.train.cli", "serve", "editor", "--backend", "threaded", "--port", "0",
               *flags]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    line = process.stdout.readline()
    assert "serving on http://" in line, line + process.stdout.read()
    return process, line.split("serving on ", 1)[1].split()[0]


def test_replica_killed_mid_batch_no_edit_lost_or_applied_twice(tmp_path):
    """Two servers; one is SIGKILLed while it holds chunks: they are retried on the other, once each."""
    log = tmp_path / "calls.log"
    process, dying_url = start_subprocess_server("--editor", "tests.mira_env.serve_editors:slow_shapes",
                                                 "--editor_kwargs", f'{{"delay_s": 1.5, "log": "{log}"}}')
    try:
        survivor = start_editor_service(ServeConfig(editor="shapes", backend="threaded", port=0))
        images, texts, seeds = shapes_batch(4)
        remote = RemoteEditor([dying_url, survivor.url], concurrency=4, chunk_size=1, max_retries=1,
                              backoff_s=0.05)
        # the subprocess editor sleeps 1.5 s per call: kill it while its chunks are in flight
        import threading

        killer = threading.Timer(0.7, lambda: os.kill(process.pid, signal.SIGKILL))
        killer.start()
        outputs = remote.edit(images, texts, seeds)
        killer.join()
    finally:
        process.kill()
        process.wait(timeout=10)
    assert log.read_text().count("\n") >= 1  # the dying server had started edits when it was killed
    expected = ShapesEditor().edit(images, texts, seeds)
    assert len(outputs) == 4 and all(same(a, b) for a, b in zip(outputs, expected))
    assert remote.failed_items == 0 and remote.failovers >= 1
    assert survivor.service.items == 4 - 0  # every chunk ended on the survivor, each exactly once
    survivor.stop()


def test_make_editor_import_path_specs():
    editor = make_editor("tests.mira_env.serve_editors:PlainFactoryEditor")
    assert editor.info.name == "my-editor"
    slow = make_editor("tests.mira_env.serve_editors:slow_shapes", delay_s=0.0)
    assert slow.info.name == "shapes"
    with pytest.raises(ConfigError, match="cannot import module 'no_such_pkg.mod'"):
        make_editor("no_such_pkg.mod:Editor")
    with pytest.raises(ConfigError, match="has no attribute 'Missing'"):
        make_editor("tests.mira_env.serve_editors:Missing")
    with pytest.raises(ConfigError, match="must start with http:// or https://"):
        make_editor("remote:127.0.0.1:8100")


@pytest.mark.parametrize("encoding", ["raw", "png"])
def test_binary_and_json_bodies_give_the_same_edits_and_every_request_one_answer(shapes_service, encoding):
    images, texts, seeds = shapes_batch(6)
    expected = ShapesEditor().edit(images, texts, seeds)
    binary = RemoteEditor(shapes_service.url, concurrency=3, image_encoding=encoding)
    assert binary.body_format == "binary"  # negotiated from /info (API 1.2 lists it)
    plain = RemoteEditor(shapes_service.url, concurrency=3, image_encoding=encoding, body_format="json")
    for remote in (binary, plain):
        outputs = remote.edit(images, texts, seeds)
        assert all(same(a, b) for a, b in zip(outputs, expected))
        log = list(remote.request_log)
        assert len(log) == 3 and all(entry["answered"] for entry in log)
        # the server counted exactly one answer per request id, with that request's item count
        assert [shapes_service.service.answers[entry["request_id"]] for entry in log] == [[e["items"]] for e in log]


def test_server_refuses_a_malformed_binary_body(shapes_service):
    from mira_env.http import HTTPClient, HTTPError
    from mira_env.serve.frames import BINARY_CONTENT_TYPE, pack

    with HTTPClient(shapes_service.url, max_retries=0) as client:
        for body, message in ((b"XXXX\x00\x00\x00\x02{}", "starts with b'MIRF'"),
                              (pack({"items": []}, [b"abc"])[:-1], "blobs' sizes add up to 3 bytes"),
                              (pack({"items": [{"image": {"blob": 1, "format": "raw"}, "instruction": "x",
                                                "seed": 0}]}, [b""]), "not one of the body's 1 blobs")):
            with pytest.raises(HTTPError, match=message):
                client.request("POST", "/v1/edit", content=body, headers={"Content-Type": BINARY_CONTENT_TYPE})
