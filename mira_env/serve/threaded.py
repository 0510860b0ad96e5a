"""A single-process JSON server (stdlib ``ThreadingHTTPServer``) for a service's ``handle`` function.

``backend="threaded"`` of ``mira serve editor`` / ``mira serve judge``: the same API as the Ray Serve
deployment, without Ray, dynamic batching or replicas (each request is one editor call). Used for
development machines without Ray and by the tests that need a server which can be killed quickly.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from mira_env.serve.frames import BINARY_CONTENT_TYPE

#: ``handle(method, path, headers (lower-case names), body) -> (status, JSON body | binary body bytes)``
Handler = Callable[[str, str, dict, bytes], "tuple[int, dict | bytes]"]


class ThreadedServer:
    """Serve ``handle`` on ``host:port`` in a background thread (``port=0``: any free port).

    ``max_request_bytes`` bounds bodies before they are read (413 with the connection closed).
    """

    def __init__(self, handle: Handler, host: str = "127.0.0.1", port: int = 0,
                 max_request_bytes: int = 256 * 1024 * 1024) -> None:
        self._handle = handle
        self._lock = threading.Lock()
        self._connections: set = set()  # open keep-alive sockets, closed by stop()
        outer = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # the service logs what matters
                pass

            def setup(self) -> None:
                super().setup()
                with outer._lock:
                    outer._connections.add(self.connection)

            def finish(self) -> None:
                with outer._lock:
                    outer._connections.discard(self.connection)
                super().finish()

            def _answer(self, status: int, body: dict | bytes, close: bool = False) -> None:
                binary = isinstance(body, (bytes, bytearray))
                data = bytes(body) if binary else json.dumps(body).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", BINARY_CONTENT_TYPE if binary else "application/json")
                self.send_header("Content-Length", str(len(data)))
                if close:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _serve(self) -> None:
                length = self.headers.get("content-length") or "0"
                if not length.isdigit():
                    self._answer(400, {"error": f"bad Content-Length {length!r}"}, close=True)
                    return
                if int(length) > max_request_bytes:
                    self._answer(413, {"error": f"request body of {length} bytes is over max_request_bytes="
                                                f"{max_request_bytes}; send smaller batches"}, close=True)
                    return
                raw = self.rfile.read(int(length)) if int(length) else b""
                headers = {key.lower(): value for key, value in self.headers.items()}
                try:
                    status, body = outer._handle(self.command, self.path.split("?", 1)[0], headers, raw)
                except Exception as exc:  # noqa: BLE001 - a handler bug answers 500, the server lives
                    status, body = 500, {"error": f"{type(exc).__name__}: {exc}"}
                self._answer(status, body)

            do_GET = do_POST = _serve  # noqa: N815 - http.server names

        self.httpd = ThreadingHTTPServer((host, port), RequestHandler)
        self.httpd.daemon_threads = True
        self.host, self.port = self.httpd.server_address[:2]
        self.url = f"http://{self.host}:{self.port}"
        self._thread: threading.Thread | None = None

    def start(self) -> "ThreadedServer":
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name=f"mira-serve-{self.port}")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting requests and close the listening socket and every open connection."""
        import socket

        self.httpd.shutdown()
        self.httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> "ThreadedServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["ThreadedServer"]
