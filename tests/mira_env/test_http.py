"""mira_env.http.HTTPClient against a real local server: retries, deadline, bounds, errors, redaction."""

from __future__ import annotations

import socket
import time

import pytest

pytest.importorskip("httpx")

from mira_env.errors import ConfigError
from mira_env.http import HTTPClient, HTTPError
from tests.mira_env.http_stub import Reply, StubServer


def client(url: str, **kwargs) -> HTTPClient:
    sleeps: list[float] = []
    kwargs.setdefault("sleep", sleeps.append)
    kwargs.setdefault("jitter", False)
    made = HTTPClient(url, **kwargs)
    made.sleeps = sleeps
    return made


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_post_json_round_trip_and_headers():
    with StubServer([Reply(json={"answer": 42})]) as server:
        with client(server.url, bearer_token="tok-secret-123") as http:
            assert http.post_json("/v1/edit", {"x": [1, 2]}) == {"answer": 42}
    [request] = server.requests
    assert request["method"] == "POST" and request["path"] == "/v1/edit"
    assert request["json"] == {"x": [1, 2]}
    assert request["headers"]["Authorization"] == "Bearer tok-secret-123"


def test_retries_5xx_with_exponential_backoff_then_succeeds():
    replies = [Reply(status=503, json={"error": "busy"}), Reply(status=502), Reply(json={"ok": 1})]
    with StubServer(replies) as server, client(server.url, max_retries=3, backoff_s=0.25) as http:
        assert http.get_json("/x") == {"ok": 1}
        assert http.sleeps == [0.25, 0.5]
    assert len(server.requests) == 3


def test_retry_after_header_is_honoured_and_capped():
    replies = [Reply(status=429, headers={"Retry-After": "7"}), Reply(status=429, headers={"Retry-After": "99"}),
               Reply(json={})]
    with StubServer(replies) as server, client(server.url, max_retries=2, max_backoff_s=10, deadline_s=100) as http:
        http.get_json("/x")
        assert http.sleeps == [7.0, 10.0]


def test_4xx_fails_at_once_with_the_server_message():
    with StubServer([Reply(status=401, json={"error": "bad token"})]) as server:
        with client(server.url, max_retries=3) as http, pytest.raises(HTTPError) as info:
            http.get_json("/x")
    assert info.value.kind == "status" and info.value.status == 401 and info.value.attempts == 1
    assert "HTTP 401 (not retried): 'bad token'; check the auth token" in str(info.value)
    assert len(server.requests) == 1 and not info.value.retryable


def test_5xx_exhausts_retries():
    with StubServer([Reply(status=500, json={"error": "boom"})]) as server:
        with client(server.url, max_retries=2) as http, pytest.raises(HTTPError) as info:
            http.post_json("/x", {})
    assert info.value.status == 500 and info.value.attempts == 3 and info.value.retryable
    assert "after 3 attempt(s)" in str(info.value)


def test_connection_refused_is_a_connect_error():
    url = f"http://127.0.0.1:{free_port()}"
    with client(url, max_retries=1) as http, pytest.raises(HTTPError) as info:
        http.get_json("/healthz")
    assert info.value.kind == "connect" and info.value.attempts == 2
    assert "is the server running and reachable" in str(info.value)


def test_timeout_then_success():
    with StubServer([Reply(json={"slow": 1}, delay_s=1.0), Reply(json={"fast": 1})]) as server:
        with client(server.url, timeout_s=0.2, max_retries=1) as http:
            assert http.get_json("/x") == {"fast": 1}


def test_total_deadline_bounds_the_whole_call():
    with StubServer([Reply(json={}, delay_s=0.6)]) as server:
        http = HTTPClient(server.url, timeout_s=0.5, deadline_s=1.0, max_retries=10, backoff_s=0.01, jitter=False)
        start = time.monotonic()
        with pytest.raises(HTTPError) as info:
            http.get_json("/x")
        elapsed = time.monotonic() - start
        http.close()
    assert elapsed < 1.5
    assert info.value.kind in ("timeout", "deadline") and 1 <= info.value.attempts <= 3


def test_dropped_connection_is_retried():
    with StubServer([Reply(drop=True), Reply(json={"ok": True})]) as server:
        with client(server.url, max_retries=1) as http:
            assert http.get_json("/x") == {"ok": True}


def test_response_body_bound():
    with StubServer([Reply(body=b"x" * 5000)]) as server:
        with client(server.url, max_response_bytes=1000) as http, pytest.raises(HTTPError) as info:
            http.get_json("/x")
    assert info.value.kind == "too_large" and "max_response_bytes=1000" in str(info.value)


def test_request_body_bound_refused_before_sending():
    with StubServer() as server:
        with client(server.url, max_request_bytes=100) as http, pytest.raises(HTTPError) as info:
            http.post_json("/x", {"blob": "y" * 200})
    assert info.value.kind == "too_large" and server.requests == []


def test_corrupt_gzip_is_a_decode_error():
    with StubServer([Reply(bad_gzip=True)]) as server:
        with client(server.url) as http, pytest.raises(HTTPError) as info:
            http.get_json("/x")
    assert info.value.kind == "decode" and "could not decode the response body" in str(info.value)


def test_non_json_body_is_a_decode_error():
    with StubServer([Reply(body=b"<html>oops</html>")]) as server:
        with client(server.url) as http, pytest.raises(HTTPError) as info:
            http.get_json("/x")
    assert info.value.kind == "decode" and "not JSON" in str(info.value)


def test_credentials_never_appear_in_errors_or_repr():
    with StubServer([Reply(status=403, json={"error": "token tok-SECRET-999 refused"})]) as server:
        base = server.url.replace("http://", "http://alice:pw123456@")
        with client(base, bearer_token="tok-SECRET-999") as http, pytest.raises(HTTPError) as info:
            http.get_json("/x")
        assert "tok-SECRET-999" not in repr(http) and "pw123456" not in repr(http)
    text = str(info.value) + info.value.url + (info.value.body or "")
    assert "tok-SECRET-999" not in text and "pw123456" not in text and "***" in text


@pytest.mark.parametrize("kwargs, message", [
    ({"timeout_s": 0}, "timeout_s=0 (type int) must be a finite number >= 0.001"),
    ({"max_retries": -1}, "max_retries=-1 (type int) must be an int >= 0"),
    ({"max_response_bytes": 0}, "max_response_bytes=0 (type int) must be a positive int or None"),
])
def test_bad_settings(kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        HTTPClient("http://127.0.0.1:1", **kwargs)


def test_bad_base_url():
    with pytest.raises(ConfigError, match="must start with http:// or https://"):
        HTTPClient("ftp://x")
