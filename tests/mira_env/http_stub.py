"""A real local HTTP server (stdlib ``http.server`` on 127.0.0.1) whose answers a test scripts.

``StubServer`` runs in a thread; each request pops the next scripted ``Reply`` (the last one repeats)
and is recorded in ``server.requests``. Used by the HTTP-client, remote-editor and judge tests.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


@dataclass
class Reply:
    """One scripted answer: status, JSON (or raw) body, headers, a delay, or a dropped connection."""

    status: int = 200
    json: Any = None
    body: bytes | None = None
    headers: dict = field(default_factory=dict)
    delay_s: float = 0.0
    drop: bool = False  # close the socket without answering
    bad_gzip: bool = False  # claim gzip, send garbage
    handler: Callable[[dict], "Reply"] | None = None  # computes the reply from the request


class StubServer:
    def __init__(self, replies: list[Reply] | None = None) -> None:
        self.replies = list(replies or [Reply(json={"ok": True})])
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _serve(self):
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                request = {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": raw}
                try:
                    request["json"] = json.loads(raw) if raw else None
                except ValueError:
                    request["json"] = None
                with stub._lock:
                    stub.requests.append(request)
                    reply = stub.replies.pop(0) if len(stub.replies) > 1 else stub.replies[0]
                if reply.handler is not None:
                    reply = reply.handler(request)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                body = reply.body if reply.body is not None else json.dumps(reply.json).encode()
                self.send_response(reply.status)
                if reply.bad_gzip:
                    body = b"this is not gzip at all"
                    self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = _serve  # noqa: N815 - http.server names

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> "StubServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data)
