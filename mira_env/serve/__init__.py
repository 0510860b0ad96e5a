"""Editors as HTTP services: a versioned JSON API, Ray Serve replicas with dynamic batching, or one process.

- :mod:`mira_env.serve.protocol`: the wire format and routes (``/healthz``, ``/info``, ``/v1/edit``);
- :mod:`mira_env.serve.frames`: the binary body (API 1.2: a JSON header and the images' bytes, no base64);
- :mod:`mira_env.serve.core`: :class:`EditService`, request handling shared by every backend;
- :mod:`mira_env.serve.ray_app`: the Ray Serve deployment (``@serve.batch``, replicas, GPUs);
- :mod:`mira_env.serve.threaded`: a single-process server without Ray;
- :mod:`mira_env.serve.runner`: start / health-check / stop on SIGINT or SIGTERM.

The client is :class:`mira_env.editors.remote.RemoteEditor` (editor spec ``remote:http://host:port``).
Nothing here imports Ray or Starlette at import time.
"""

from mira_env.serve.config import ServeConfig
from mira_env.serve.core import EditService
from mira_env.serve.protocol import API_VERSION, Limits
from mira_env.serve.runner import RunningService, serve_until_signal, start_editor_service

__all__ = ["API_VERSION", "EditService", "Limits", "RunningService", "ServeConfig", "serve_until_signal",
           "start_editor_service"]
