"""The editor service on Ray Serve: ONE module-scoped local Serve app (2 replicas, fractional CPUs, 127.0.0.1).

Covers what the threaded-backend tests (test_remote_editor.py) cannot: dynamic batching across requests,
a dynamic batch split by image size, replicas, and a replica actor killed mid-batch. Also the
``mira serve editor`` command's clean stop on SIGTERM (threaded backend, a subprocess).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("httpx")
pytest.importorskip("ray.serve")

from mira_env.editors.remote import RemoteEditor
from mira_env.errors import ConfigError, EditorError
from mira_env.serve import ServeConfig, start_editor_service
from mira_env.shapes.editor import ShapesEditor
from mira_env.shapes.env import make_shapes_env
from tests.mira_env.test_remote_editor import same, shapes_batch

ROOT = Path(__file__).resolve().parents[2]
PORT = 18431
TOKEN = "ray-serve-token-0123456789"


@pytest.fixture(scope="module")
def ray_service(tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "calls.log"
    saved = {key: os.environ.get(key) for key in ("PYTHONPATH", "MIRA_TEST_SERVE_TOKEN", "RAY_AUTH_MODE")}
    # replicas import the test editor by spec: the Ray workers inherit this environment
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), saved["PYTHONPATH"]) if p)
    os.environ["MIRA_TEST_SERVE_TOKEN"] = TOKEN
    config = ServeConfig(editor="tests.mira_env.serve_editors:slow_shapes",
                         editor_kwargs={"delay_s": 0.2, "log": str(log)}, backend="ray", replicas=2,
                         cpus_per_replica=0.25, max_batch=8, batch_wait_ms=100, port=PORT,
                         token_env="MIRA_TEST_SERVE_TOKEN")
    running = start_editor_service(config)
    try:
        yield running, log
    finally:
        running.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def calls(log: Path) -> list[tuple[str, int, str]]:
    rows = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
    return [(pid, int(size), sizes) for pid, size, sizes in rows]


def test_served_edits_equal_in_process_and_info(ray_service):
    running, _ = ray_service
    images, texts, seeds = shapes_batch(6)
    remote = RemoteEditor(running.url, token=TOKEN, concurrency=3)
    assert remote.info.name == "remote:shapes" and remote.server_info["batching"] == {"max_batch": 8,
                                                                                       "batch_wait_ms": 100.0}
    assert remote.server_info["editor"]["settings"] == ["delay_s"] and remote.server_info["auth"] is True
    outputs = remote.edit(images, texts, seeds)
    assert all(same(a, b) for a, b in zip(outputs, ShapesEditor().edit(images, texts, seeds)))
    with pytest.raises(EditorError, match="refused the auth token"):
        RemoteEditor(running.url, token_env=None, max_retries=0)


def test_concurrent_requests_share_dynamic_batches(ray_service):
    running, log = ray_service
    images, texts, seeds = shapes_batch(8)
    before = len(calls(log))
    clients = [RemoteEditor(running.url, token=TOKEN) for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:  # 8 single-edit requests at once, as 8 rollouts would send them
        outputs = list(pool.map(lambda i: clients[i].edit([images[i]], [texts[i]], [seeds[i]])[0], range(8)))
    assert all(same(a, b) for a, b in zip(outputs, ShapesEditor().edit(images, texts, seeds)))
    made = calls(log)[before:]
    assert sum(size for _, size, _ in made) == 8
    assert len(made) < 8, f"no dynamic batching: {made}"


def test_dynamic_batch_is_split_by_image_size(ray_service):
    running, log = ray_service
    small_env, large_env = make_shapes_env(num_tasks=2, resolution=32), make_shapes_env(num_tasks=2, resolution=64)
    images, texts = [], []
    for env in (small_env, large_env, small_env, large_env):
        env.reset(seed=len(images), options={"task": len(images) % 2})
        images.append(env.task.image)
        texts.append(env.task.metadata["program"][0]["instruction"])
    seeds = [1, 2, 3, 4]
    before = len(calls(log))
    outputs = RemoteEditor(running.url, token=TOKEN, concurrency=1).edit(images, texts, seeds)  # ONE request
    assert all(same(a, b) for a, b in zip(outputs, ShapesEditor().edit(images, texts, seeds)))
    made = calls(log)[before:]
    assert sorted((size, sizes) for _, size, sizes in made) == [(2, "32x32"), (2, "64x64")]


def test_second_service_under_a_route_prefix_on_the_same_cluster(ray_service):
    from ray import serve

    from mira_env.serve.ray_app import editor_app, strip_prefix

    running, _ = ray_service
    config = ServeConfig(editor="identity", backend="ray", port=PORT, cpus_per_replica=0.25, token_env=None,
                         app_name="second", route_prefix="/second")
    serve.run(editor_app(config), name="second", route_prefix="/second")
    try:
        images, texts, seeds = shapes_batch(2)
        second = RemoteEditor(f"http://127.0.0.1:{PORT}/second", token_env=None)
        assert second.info.name == "remote:identity"
        assert all(same(a, b) for a, b in zip(second.edit(images, texts, seeds), images))
        assert RemoteEditor(running.url, token=TOKEN).info.name == "remote:shapes"  # the first app is untouched
    finally:
        serve.delete("second")
    assert [strip_prefix(p, "/second") for p in ("/second/info", "/second", "/secondary/info", "/info")] == \
        ["/info", "/", "/secondary/info", "/info"]


def test_replica_killed_mid_batch_is_retried_without_losing_or_repeating_edits(ray_service):
    import ray

    running, log = ray_service
    images, texts, seeds = shapes_batch(4)
    remote = RemoteEditor(running.url, token=TOKEN, concurrency=4, chunk_size=1, max_retries=4, backoff_s=0.2,
                          settings={"delay_s": 1.0})
    replicas = [name for name in ray.util.list_named_actors(all_namespaces=True)
                if "SERVE_REPLICA" in name["name"] and "editor" in name["name"]]
    assert len(replicas) == 2, replicas
    victim = ray.get_actor(replicas[0]["name"], namespace=replicas[0]["namespace"])
    before = len(calls(log))
    killer = threading.Timer(0.5, lambda: ray.kill(victim, no_restart=False))
    killer.start()
    outputs = remote.edit(images, texts, seeds)
    killer.join()
    assert remote.failed_items == 0
    assert all(same(a, b) for a, b in zip(outputs, ShapesEditor().edit(images, texts, seeds)))
    assert sum(size for _, size, _ in calls(log)[before:]) >= 4  # killed edits ran again elsewhere


@pytest.mark.parametrize("burst", [(signal.SIGTERM,), (signal.SIGINT, signal.SIGTERM, signal.SIGINT, signal.SIGTERM)])
def test_signals_stop_the_command_cleanly(burst):
    """One SIGTERM, or a burst (``timeout`` forwarding Ctrl-C while a second signal arrives): a clean stop."""
    command = [sys.executable, "-m", "mira_env.train.cli", "serve", "editor", "--backend", "threaded", "--port", "0",
               "--editor", "shapes"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    first = process.stdout.readline()
    assert "mira editor service serving on http://127.0.0.1:" in first, first
    url = first.split("serving on ", 1)[1].split()[0]
    assert RemoteEditor(url).info.name == "remote:shapes"
    for sig in burst:
        process.send_signal(sig)
    rest = process.communicate(timeout=30)[0]
    assert process.returncode == 0 and f"mira editor service stopped ({signal.Signals(burst[0]).name})" in rest


@pytest.mark.parametrize("kwargs, message", [
    ({"port": 0}, "port=0 (any free port) works with backend='threaded' only; give Ray a port"),
    ({"route_prefix": "judge"}, "route_prefix='judge' (type str) must start with '/'"),
    ({"host": "my-laptop"}, "host='my-laptop' (type str) must be an IP address such as 127.0.0.1 or 0.0.0.0"),
    ({"editor": "remote:http://x:1"}, "a service cannot serve a remote editor"),
    ({"backend": "k8s"}, "backend='k8s' (type str) is not one of: 'ray', 'threaded'"),
])
def test_config_errors(kwargs, message):
    with pytest.raises(ConfigError) as info:
        ServeConfig(**kwargs)
    assert message in str(info.value)
