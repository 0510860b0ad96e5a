"""A real OpenAI-compatible chat server for tests: /v1/chat/completions on 127.0.0.1 in a thread.

Shared by the judge, paraphrase and data-build tests. ``answer`` is the assistant text, or a function of the
request body returning it; the first ``fail_first`` requests get ``status`` (both may be changed while the
server runs). Every request is kept in ``requests`` (path, body, Authorization header).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ChatServer:
    """A real OpenAI-compatible /v1/chat/completions server on 127.0.0.1 (a thread), scripted per test."""

    def __init__(self, answer="SC: 7", fail_first=0, status=500):
        self.answer, self.fail_first, self.status = answer, fail_first, status
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append({"path": self.path, "body": body,
                                            "auth": self.headers.get("Authorization")})
                    count = len(server.requests)
                if count <= server.fail_first:
                    self.send_response(server.status)
                    self.send_header("Retry-After", "0")
                    self.end_headers()
                    self.wfile.write(b'{"error": "busy"}')
                    return
                answer = server.answer(body) if callable(server.answer) else server.answer
                data = json.dumps({"choices": [{"message": {"role": "assistant", "content": answer}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
