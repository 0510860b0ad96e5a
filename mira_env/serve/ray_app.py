"""The Ray Serve deployment of an editor: replicas on GPUs / nodes, ``@serve.batch`` dynamic batching.

Each replica builds its editor once from the spec (so the model loads where the replica runs) and an
:class:`~mira_env.serve.core.EditService`. ``POST /v1/edit`` splits a request into items and awaits
each through the batched method, so items of concurrent requests (several rollouts, several trainer
processes, the chunks :class:`~mira_env.editors.remote.RemoteEditor` fans out) share editor calls.
A dynamic batch is then split by image size and settings (one editor call per group). Serve's proxy
spreads requests over the replicas; a replica that dies is restarted by Serve while the client retries.

Ray and Starlette are imported inside :func:`editor_app` (``pip install 'mira-env[serve]'``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from mira_env.serve.config import ServeConfig


def strip_prefix(path: str, prefix: str) -> str:
    """``path`` without the application's route prefix (Serve passes the full path)."""
    if prefix not in ("", "/") and (path == prefix or path.startswith(prefix.rstrip("/") + "/")):
        return path[len(prefix.rstrip("/")):] or "/"
    return path


def editor_app(config: ServeConfig, token: str | None = None) -> Any:
    """The bound Serve application (``serve.run(editor_app(config))``) for ``config``."""
    try:
        from ray import serve
        from starlette.requests import Request
        from starlette.responses import JSONResponse, Response
    except ImportError:
        from mira_env.errors import ConfigError

        raise ConfigError("the Ray backend needs Ray Serve: pip install 'mira-env[serve]' (or use "
                          "--backend threaded, one process without Ray)") from None

    @serve.deployment(name="editor", num_replicas=config.replicas,
                      ray_actor_options={"num_cpus": float(config.cpus_per_replica),
                                         "num_gpus": float(config.gpus_per_replica)},
                      max_ongoing_requests=config.max_ongoing_requests)
    class EditorDeployment:
        def __init__(self, settings: dict, auth_token: str | None) -> None:
            from mira_env.editors import make_editor
            from mira_env.serve.core import EditService

            cfg = ServeConfig(**settings)
            editor = make_editor(cfg.editor, **cfg.editor_kwargs)
            self.service = EditService(editor, cfg.limits, auth_token, cfg.batching())
            self.edit_item.set_max_batch_size(cfg.max_batch)
            self.edit_item.set_batch_wait_timeout_s(cfg.batch_wait_ms / 1000.0)
            self.prefix = cfg.route_prefix

        @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
        async def edit_item(self, items: list) -> list[dict]:
            # the editor runs in a worker thread, so /healthz and /info answer during a long batch
            return await asyncio.to_thread(self.service.run_batch, items)

        async def __call__(self, request: Request) -> JSONResponse:
            from mira_env.serve.frames import BINARY_CONTENT_TYPE
            from mira_env.serve.protocol import EDIT_PATH, RequestError

            path, method = strip_prefix(request.url.path, self.prefix), request.method
            headers = {key.lower(): value for key, value in request.headers.items()}
            if path == EDIT_PATH and method == "POST":
                try:
                    self.service.check_auth(headers.get("authorization"))
                    length = headers.get("content-length")
                    limit = self.service.limits.max_request_bytes
                    if length and length.isdigit() and int(length) > limit:
                        raise RequestError(413, f"request body of {length} bytes is over max_request_bytes={limit};"
                                                " send smaller batches")
                    items, request_id, body_format = self.service.parse_request(
                        await request.body(), length, headers.get("content-type"))
                except RequestError as exc:
                    return JSONResponse({"error": str(exc)}, status_code=exc.status)
                results = await asyncio.gather(*(self.edit_item(item) for item in items))
                body = self.service.answer(list(results), request_id, body_format)
                if isinstance(body, bytes):
                    return Response(body, media_type=BINARY_CONTENT_TYPE)
                return JSONResponse(body)
            status, body = self.service.handle(method, path, headers, b"")
            return JSONResponse(body, status_code=status)

        def check_health(self) -> None:
            if self.service is None:
                raise RuntimeError("editor not loaded")

    return EditorDeployment.bind(dataclasses.asdict(config), token)


__all__ = ["editor_app", "strip_prefix"]
