"""APIAgent against a real OpenAI-compatible HTTP server on 127.0.0.1 that answers with the tiny VLM."""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from mira_env.agents.api import APIAgent, APIAgentConfig, APIAgentError, to_openai_messages
from mira_env.agents.base import Agent
from mira_env.agents.prompt import build_messages
from mira_env.agents.vlm import VLMAgent
from mira_env.errors import ConfigError

pytestmark = pytest.mark.usefixtures("torch_single_thread")

KEY_ENV, KEY = "MIRA_TEST_API_KEY", "sk-test-Zq81secret"


def _from_openai(messages: list[dict]) -> list[dict]:
    """OpenAI chat messages back to processor messages (data URIs decoded to PIL images)."""
    converted = []
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        parts = []
        for part in content:
            if part["type"] == "image_url":
                header, data = part["image_url"]["url"].split(",", 1)
                assert header == "data:image/png;base64"
                parts.append({"type": "image", "image": Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")})
            else:
                parts.append({"type": "text", "text": part["text"]})
        converted.append({"role": message["role"], "content": parts})
    return converted


class ChatServer:
    """A small /v1/chat/completions server whose answers come from a real tiny VLM.

    ``script`` holds per-request behaviours consumed in order ("ok" once it is empty):
    an HTTP status such as "500", "429" (with Retry-After: 0) or "400", "401-echo" (a 401 whose body
    echoes the Authorization header), "slow"
    (sleeps ``slow_s`` before answering) and "bad-json".
    """

    def __init__(self, policy: VLMAgent):
        self.policy = policy
        self.script: deque[str] = deque()
        self.requests: list[dict] = []
        self.slow_s = 1.0
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()
        self._model_lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output quiet
                pass

            def do_POST(self):
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                with server._lock:
                    server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                    behaviour = server.script.popleft() if server.script else "ok"
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    self._answer(behaviour, body)
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _answer(self, behaviour, body):
                if behaviour.isdigit():  # a scripted HTTP error status
                    extra = {"Retry-After": "0"} if behaviour == "429" else {}
                    return self._send(int(behaviour), {"error": {"message": f"scripted {behaviour}"}}, extra)
                if behaviour == "401-echo":
                    return self._send(401, {"error": f"bad key {self.headers.get('Authorization')}"})
                if behaviour == "bad-json":
                    return self._send(200, {"object": "nothing"})
                if behaviour == "slow":
                    time.sleep(server.slow_s)
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": "not found"})
                with server._model_lock:
                    (text,) = server.policy.generate_texts([_from_openai(body["messages"])])
                self._send(200, {"id": "c1", "object": "chat.completion", "model": body["model"],
                                 "choices": [{"index": 0, "finish_reason": "length",
                                              "message": {"role": "assistant", "content": text}}]})

            def _send(self, status, payload, headers=None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def reset(self, *script: str) -> None:
        deadline = time.monotonic() + 3.0  # let handlers abandoned by timed-out clients finish
        while self.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._lock:
            self.script = deque(script)
            self.requests = []
            self.max_in_flight = 0


@pytest.fixture(scope="module")
def policy(tiny_vlm_loaded):
    model, processor = tiny_vlm_loaded["qwen2_5_vl"]
    return VLMAgent.from_model(model, processor, name="tiny", max_new_tokens=10, conversation="single_turn")


@pytest.fixture(scope="module")
def server(policy):
    chat = ChatServer(policy)
    chat.thread.start()
    yield chat
    chat.httpd.shutdown()
    chat.httpd.server_close()


@pytest.fixture
def make_agent(server):
    agents = []

    def make(**kwargs):
        # the HTTP tests ask about arbitrary observations: the single-turn prompt (multi-turn is tested below)
        options = dict(base_url=server.url, model="tiny-qwen", backoff_s=0.01, max_retries=2, timeout_s=5.0,
                       conversation="single_turn")
        options.update(kwargs)
        agent = APIAgent(**options)
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.close()


def test_api_agent_answers_like_the_local_policy(server, make_agent, policy, env_observations):
    server.reset()
    agent = make_agent(concurrency=3)
    assert isinstance(agent, Agent) and agent.name == "api:tiny-qwen"
    actions = agent.act(env_observations)
    assert len(server.requests) == 3 and agent.requests_sent == 3
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions" and request["auth"] is None
    assert request["body"]["model"] == "tiny-qwen" and request["body"]["max_tokens"] == 256
    # the server saw the MIRA prompt with both images losslessly: its answers equal the local policy's
    local = policy.act(env_observations)
    assert [p.text for p in agent.last_outputs] == [p.text for p in policy.last_outputs]
    assert actions == local and len(actions) == 3


def test_to_openai_messages_format():
    image = Image.new("RGB", (4, 3), (1, 2, 3))
    messages = to_openai_messages(build_messages("go", image, image, ["a"], system_prompt="sys"))
    assert messages[0] == {"role": "system", "content": "sys"}
    parts = messages[1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url", "text", "image_url", "text"]
    decoded = _from_openai(messages)[1]["content"][1]["image"]
    assert decoded.size == (4, 3) and decoded.getpixel((0, 0)) == (1, 2, 3)


@pytest.mark.parametrize("script, sent", [(("500",), 2), (("429", "503"), 3)])
def test_api_agent_retries_then_succeeds(server, make_agent, env_observations, script, sent):
    server.reset(*script)
    agent = make_agent()
    (action,) = agent.act(env_observations[:1])
    assert len(server.requests) == sent and agent.requests_sent == sent
    assert agent.last_outputs[0].text  # a real completion came back


def test_api_agent_gives_up_after_max_retries(server, make_agent, env_observations):
    server.reset("500", "500", "500", "500")
    agent = make_agent(max_retries=2)
    with pytest.raises(APIAgentError) as err:
        agent.act(env_observations[:1])
    assert len(server.requests) == 3
    assert str(err.value) == (f"chat completion failed: {server.url}/chat/completions answered HTTP 500 after 3 "
                              "attempt(s): '{\"message\": \"scripted 500\"}'")


def test_api_agent_does_not_retry_client_errors(server, make_agent, env_observations):
    server.reset("400")
    agent = make_agent()
    with pytest.raises(APIAgentError, match=r"answered HTTP 400 \(not retried\): .*scripted 400"):
        agent.act(env_observations[:1])
    assert len(server.requests) == 1


def test_api_agent_times_out_and_retries(server, make_agent, env_observations):
    server.reset("slow", "slow")
    server.slow_s = 1.0
    agent = make_agent(timeout_s=0.2, max_retries=1)
    start = time.perf_counter()
    with pytest.raises(APIAgentError) as err:
        agent.act(env_observations[:1])
    assert time.perf_counter() - start < 1.5  # two 0.2 s attempts, not the 2 s the server would take
    assert len(server.requests) == 2
    assert str(err.value).startswith(f"chat completion failed: POST {server.url}/chat/completions failed after 2 "
                                     "attempt(s) within deadline_s=")
    assert "timed out after" in str(err.value) and "raise timeout_s" in str(err.value)


def test_api_agent_on_error_empty_keeps_going(server, make_agent, env_observations):
    server.reset("400")
    agent = make_agent(on_error="empty", concurrency=1)
    actions = agent.act(env_observations)
    assert actions[0] == "" and not agent.last_outputs[0].ok
    assert agent.last_outputs[0].error.startswith(f"request failed: chat completion failed: {server.url}/chat/"
                                                  "completions answered HTTP 400 (not retried)")
    assert all(p.text for p in agent.last_outputs[1:]) and len(server.requests) == 3


def test_api_agent_rejects_non_completion_answers(server, make_agent, env_observations):
    server.reset("bad-json")
    with pytest.raises(APIAgentError) as err:
        make_agent().act(env_observations[:1])
    assert str(err.value) == ("the server's answer is not a chat completion (no choices[0].message.content): "
                              "'{\"object\": \"nothing\"}'")


def test_api_agent_runs_requests_concurrently(server, make_agent, env_observations):
    server.reset("slow", "slow", "slow")
    server.slow_s = 0.4
    agent = make_agent(concurrency=3)
    agent.act(env_observations)
    assert server.max_in_flight == 3  # all three slow requests were in the server at once
    server.reset("slow", "slow")
    make_agent(concurrency=1).act(env_observations[:2])
    assert server.max_in_flight == 1


def test_api_key_is_sent_but_never_shown(server, make_agent, env_observations, monkeypatch, caplog):
    monkeypatch.setenv(KEY_ENV, KEY)
    server.reset("500", "401-echo")
    with caplog.at_level(logging.DEBUG):
        agent = make_agent(api_key_env=KEY_ENV)
        with pytest.raises(APIAgentError) as err:
            agent.act(env_observations[:1])
    assert [r["auth"] for r in server.requests] == [f"Bearer {KEY}"] * 2
    assert "bad key ***" in str(err.value)  # the echoed header, redacted (whole "Bearer <key>" value)
    for text in (str(err.value), repr(err.value), repr(agent), repr(agent.config), str(vars(agent)), caplog.text):
        assert KEY not in text
    assert KEY_ENV in repr(agent)


@pytest.mark.parametrize("kwargs, message", [
    (dict(base_url="localhost:8000"), "base_url='localhost:8000' (type str) must be an http(s) URL such as "
                                      "'http://localhost:8000/v1'"),
    (dict(model=""), "model='' (type str) must name the served model (a non-empty str)"),
    (dict(api_key_env="sk-abc-123"), "api_key_env=<hidden> must be the NAME of an environment variable "
                                     "(e.g. 'OPENAI_API_KEY'), not the key itself"),
    (dict(api_key_env="MIRA_TEST_UNSET_KEY"), "api_key_env='MIRA_TEST_UNSET_KEY': that environment variable is not "
                                              "set; export MIRA_TEST_UNSET_KEY=<your key> or pass api_key_env=None"),
    (dict(concurrency=0), "concurrency=0 (type int) must be a positive int"),
    (dict(max_retries=-1), "max_retries=-1 (type int) must be an int >= 0"),
    (dict(timeout_s=0), "timeout_s=0 (type int) must be a finite number > 0"),
    (dict(backoff_s=float("nan")), "backoff_s=nan (type float) must be a finite number >= 0"),
    (dict(top_p=2), "top_p=2 (type int) must be a finite number in (0, 1]"),
    (dict(on_error="ignore"), "on_error='ignore' (type str) is not one of: 'raise', 'empty'"),
    (dict(retries=3), None),
])
def test_api_agent_config_errors(kwargs, message, monkeypatch):
    monkeypatch.delenv("MIRA_TEST_UNSET_KEY", raising=False)
    options = dict(base_url="http://127.0.0.1:9/v1", model="m")
    options.update(kwargs)
    with pytest.raises(ConfigError) as err:
        APIAgent(**options)
    if message is None:
        known = sorted(f for f in APIAgentConfig.__dataclass_fields__)
        message = f"unknown APIAgent option(s) ['retries']; known options: {known}"
    assert str(err.value) == message


def test_api_agent_multi_turn_sends_tool_images_in_user_messages(server, make_agent, tiny_vlm_loaded):
    """The default conversation is the GRPO one; the tool turns reach the server as user turns of the same content."""
    import gymnasium

    from mira_env.agents.api import APIAgentConfig
    from mira_env.agents.prompt import Turn, build_conversation, tool_turns_as_user
    from tests.agents.conftest import make_tasks

    assert APIAgentConfig(model="m").conversation == "multi_turn"
    server.reset()
    agent = make_agent(conversation="multi_turn", edit_budget=3, system_prompt="")
    env = gymnasium.make("mira/ImageEdit-v0", editor="identity", tasks=make_tasks(1), height=32, width=32,
                         max_steps=3)
    obs, info = env.reset(seed=0)
    source = Image.fromarray(obs["source"])
    (first,) = agent.act([obs], [{**info, "episode_id": "e"}])
    answer = agent.last_outputs[0].text  # the tiny model's raw answer: it stays in the conversation as written
    obs, _, _, _, info = env.step(first)
    error = f"invalid instruction: {info['invalid_reason']}" if info["invalid_reason"] else None
    agent.act([obs], [{**info, "episode_id": "e"}])
    messages = server.requests[-1]["body"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == [{"type": "text", "text": answer}]
    expected = tool_turns_as_user(build_conversation(obs["instruction"], source,
                                                     [Turn(answer, Image.fromarray(obs["current"]), error)],
                                                     edit_budget=3, system_prompt=""))
    received = _from_openai(messages)
    assert [m["role"] for m in received] == [m["role"] for m in expected]
    for got, want in zip(received, expected):
        assert [p["type"] for p in got["content"]] == [p["type"] for p in want["content"]]
        for a, b in zip(got["content"], want["content"]):
            if a["type"] == "image":
                assert a["image"].tobytes() == b["image"].tobytes()
            else:
                assert a["text"] == b["text"]
    assert received[2]["content"][1]["text"].startswith("Edit 1 of 3 ")
