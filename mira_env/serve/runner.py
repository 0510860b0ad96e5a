"""Start a service (Ray Serve or threaded), wait until it answers, stop it cleanly on SIGINT / SIGTERM.

Programmatic use (tests, notebooks, benchmarks)::

    from mira_env.serve import ServeConfig, start_editor_service

    running = start_editor_service(ServeConfig(editor="shapes", backend="ray", replicas=2,
                                               cpus_per_replica=0.5, port=8100))
    editor = RemoteEditor(running.url)
    ...
    running.stop()

``mira serve editor`` calls :func:`start_editor_service` then :func:`serve_until_signal`.
"""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from mira_env.errors import ConfigError
from mira_env.serve.config import ServeConfig


@dataclass
class RunningService:
    """A started service: its URL, backend, and how to stop it (idempotent)."""

    url: str
    backend: str
    stop_fn: Callable[[], None]
    service: Any = None  # the in-process service object (threaded backend), for inspection
    _stopped: bool = field(default=False, repr=False)

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            self.stop_fn()

    def __enter__(self) -> "RunningService":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_until_healthy(url: str, timeout_s: float = 120.0, interval_s: float = 0.2) -> None:
    """Poll ``GET {url}/healthz`` until it answers 200; :class:`ConfigError` after ``timeout_s``."""
    from mira_env.http import HTTPClient, HTTPError

    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    with HTTPClient(url, timeout_s=min(5.0, timeout_s), max_retries=0) as client:
        while time.monotonic() < deadline:
            try:
                client.get_json("/healthz", retry=False)
                return
            except HTTPError as exc:
                last = str(exc)
            time.sleep(interval_s)
    raise ConfigError(f"the service at {url} did not become healthy within {timeout_s:.0f}s; last: {last}")


def start_ray_app(app: Any, config: ServeConfig, health_timeout_s: float = 300.0) -> RunningService:
    """``serve.run`` a bound Serve application under ``config`` (host, port, cluster address, app name)."""
    try:
        import ray
        from ray import serve
    except ImportError:
        raise ConfigError("the Ray backend needs Ray Serve: pip install 'mira-env[serve]' (or use --backend "
                          "threaded)") from None
    started_ray = False
    if not ray.is_initialized():
        # no address: a NEW local instance ("local"), never silently joining the last `ray start` cluster
        ray.init(address=config.address or "local", include_dashboard=False, log_to_driver=False,
                 configure_logging=True, logging_level="warning")
        started_ray = True
    serve.start(http_options={"host": config.host, "port": config.port})
    serve.run(app, name=config.app_name, route_prefix=config.route_prefix)
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::") else config.host
    url = f"http://{host}:{config.port}" + config.route_prefix.rstrip("/")
    wait_until_healthy(url, health_timeout_s)

    def stop() -> None:
        try:
            serve.delete(config.app_name)
        finally:
            serve.shutdown()
            if started_ray:
                ray.shutdown()

    return RunningService(url, "ray", stop)


def start_editor_service(config: ServeConfig, health_timeout_s: float = 300.0) -> RunningService:
    """Start the editor service ``config`` describes and return once ``/healthz`` answers."""
    token = config.token()
    if config.backend == "threaded":
        from mira_env.editors import make_editor
        from mira_env.serve.core import EditService
        from mira_env.serve.threaded import ThreadedServer

        service = EditService(make_editor(config.editor, **config.editor_kwargs), config.limits, token,
                              {"max_batch": None, "batch_wait_ms": None})
        server = ThreadedServer(service.handle, config.host, config.port,
                                config.limits.max_request_bytes).start()
        return RunningService(server.url, "threaded", server.stop, service)
    from mira_env.serve.ray_app import editor_app

    return start_ray_app(editor_app(config, token), config, health_timeout_s)


def serve_until_signal(running: RunningService, what: str = "service", out=None) -> int:
    """Block until SIGINT or SIGTERM, then stop ``running`` and return 0 (the exit status)."""
    out = out or sys.stdout
    # The handler only appends to a list: a threading.Event.set() inside a signal handler deadlocks when a second
    # signal arrives while the first handler holds the Event's lock (e.g. `timeout` forwarding a Ctrl-C).
    received: list[int] = []

    def on_signal(signum, _frame) -> None:
        received.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"mira {what} serving on {running.url} (backend {running.backend}); Ctrl-C or SIGTERM stops it",
              file=out, flush=True)
        while not received:
            time.sleep(0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        running.stop()
    name = signal.Signals(received[0]).name if received else "request"
    print(f"mira {what} stopped ({name})", file=out, flush=True)
    return 0


__all__ = ["RunningService", "serve_until_signal", "start_editor_service", "start_ray_app", "wait_until_healthy"]
