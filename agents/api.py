"""``APIAgent``: the MIRA policy behind any OpenAI-compatible chat completions server.

Works with a local vLLM / SGLang server (``vllm serve Qwen/Qwen2.5-VL-7B-Instruct`` ->
``base_url="http://localhost:8000/v1"``) or a hosted model. Each observation becomes the same MIRA
conversation as :class:`~mira_env.agents.vlm.VLMAgent` plays (:mod:`mira_env.agents.prompt`, the one renderer; by
default ``multi_turn``, the GRPO tool conversation), images sent as PNG data URIs, and each answer is parsed with
:func:`mira_env.actions.parse_action`. OpenAI-compatible servers (vLLM) reject images in tool-role messages, so the
multi-turn conversation's tool turns travel as user messages with the same content
(:func:`mira_env.agents.prompt.tool_turns_as_user`); the ``edit`` tool's schema is not sent (the answers are plain
``<edit>X</edit>`` text, which the server needs no tool parser for).

- Requests run in a thread pool of ``concurrency`` workers over ONE :class:`mira_env.http.HTTPClient` (the shared
  HTTP client of mira-env: httpx with retries, a total deadline, bounded bodies, redacted errors).
- 408, 409, 425, 429, 5xx, timeouts and connection errors are retried up to ``max_retries`` times with exponential
  backoff (``backoff_s * 2**attempt``, capped at ``max_backoff_s``; a ``Retry-After`` header is honoured within
  the cap). Other 4xx answers fail at once.
- The API key is read from the environment variable NAMED by ``api_key_env`` when the client is built (first
  request). Its value is registered as a secret with :mod:`mira_env.redact`: it is never stored on the agent
  config, never logged and is redacted from every error message.
"""

from __future__ import annotations

import base64
import io
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from PIL import Image

from mira_env.actions import DEFAULT_MAX_LENGTH, ParsedAction, parse_action
from mira_env.agents.prompt import (CONVERSATIONS, DEFAULT_EDIT_BUDGET, EpisodeConversations, batch_messages,
                                    tool_turns_as_user)
from mira_env.config import merge_config
from mira_env.errors import ConfigError, MiraError, describe
from mira_env.validate import check_choice, check_float, check_int, check_ints


_RETRY_STATUS = frozenset({408, 409, 425, 429}) | frozenset(range(500, 600))
_ON_ERROR = ("raise", "empty")


class APIAgentError(MiraError, RuntimeError):
    """A chat completions request failed for good (after retries), or its answer was unusable."""


@dataclass
class APIAgentConfig:
    """Connection, retry and generation settings of :class:`APIAgent`."""

    base_url: str = field(default="http://localhost:8000/v1", metadata={
        "help": "Server root up to and including /v1; requests go to {base_url}/chat/completions."})
    model: str = field(default="", metadata={"help": "Model name the server serves (the request's 'model')."})
    api_key_env: str | None = field(default=None, metadata={
        "help": "NAME of the environment variable holding the API key (e.g. 'OPENAI_API_KEY'); None sends no key."})
    timeout_s: float = field(default=60.0, metadata={"help": "Per-request timeout in seconds."})
    max_retries: int = field(default=3, metadata={
        "help": "Retries after the first attempt on 429 / 5xx / timeouts / connection errors."})
    backoff_s: float = field(default=1.0, metadata={"help": "First retry delay in seconds; doubles every retry."})
    max_backoff_s: float = field(default=30.0, metadata={"help": "Upper bound of one retry delay in seconds."})
    concurrency: int = field(default=8, metadata={"help": "Requests in flight at once (thread pool size)."})
    max_tokens: int = field(default=256, metadata={"help": "max_tokens of each completion."})
    temperature: float = field(default=0.0, metadata={"help": "Sampling temperature sent to the server."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling mass sent to the server, in (0, 1]."})
    system_prompt: str | None = field(default=None, metadata={
        "help": "Replaces mira_env.agents.prompt.SYSTEM_PROMPT; '' drops the system message."})
    max_instruction_length: int = field(default=DEFAULT_MAX_LENGTH, metadata={
        "help": "Longest accepted atomic instruction in characters; longer answers are malformed."})
    extra_body: dict = field(default_factory=dict, metadata={
        "help": "Extra JSON fields merged into every request (e.g. {'seed': 0} or vLLM sampling options)."})
    conversation: str = field(default="multi_turn", metadata={
        "help": "'multi_turn' (the GRPO tool conversation, tool images in user messages) or 'single_turn'."})
    edit_budget: int = field(default=DEFAULT_EDIT_BUDGET, metadata={
        "help": "Edit budget T shown in multi-turn tool turns; match the env's max_steps and the policy's training."})
    on_error: str = field(default="raise", metadata={
        "help": "'raise': a request that fails for good raises APIAgentError; 'empty': its action is '' "
                "and the error is kept in last_outputs."})

    def __post_init__(self) -> None:
        if not isinstance(self.base_url, str) or not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base_url={describe(self.base_url)} must be an http(s) URL such as "
                              "'http://localhost:8000/v1'")
        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigError(f"model={describe(self.model)} must name the served model (a non-empty str)")
        key_env = self.api_key_env
        if key_env is not None and (not isinstance(key_env, str) or not key_env.isidentifier()):
            # the value is not shown: a caller who passed the key itself would see it in logs
            raise ConfigError("api_key_env=<hidden> must be the NAME of an environment variable "
                              "(e.g. 'OPENAI_API_KEY'), not the key itself")
        check_ints(self, ("max_tokens", "concurrency", "max_instruction_length"))
        check_int("max_retries", self.max_retries, minimum=0)
        check_float("timeout_s", self.timeout_s, above=0)
        for name in ("backoff_s", "max_backoff_s", "temperature"):
            check_float(name, getattr(self, name), minimum=0)
        check_float("top_p", self.top_p, above=0, maximum=1)
        if not isinstance(self.extra_body, dict):
            raise ConfigError(f"extra_body={describe(self.extra_body)} must be a dict")
        check_choice("conversation", self.conversation, CONVERSATIONS)
        check_int("edit_budget", self.edit_budget)
        check_choice("on_error", self.on_error, _ON_ERROR)
        if self.system_prompt is not None and not isinstance(self.system_prompt, str):
            raise ConfigError(f"system_prompt={describe(self.system_prompt)} must be a str or None")


def image_data_uri(image: Image.Image) -> str:
    """``image`` as a ``data:image/png;base64,...`` URI (lossless)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def to_openai_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Processor-style messages (``{"type": "image", "image": PIL}`` parts) as OpenAI chat messages.

    Image parts become ``{"type": "image_url", "image_url": {"url": <PNG data URI>}}``; text parts
    stay; a system message's text parts are joined into one string (some servers want a str there).
    """
    converted = []
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            converted.append({"role": message["role"], "content": content})
            continue
        parts = []
        for part in content:
            if part.get("type") == "image":
                parts.append({"type": "image_url", "image_url": {"url": image_data_uri(part["image"])}})
            elif part.get("type") == "text":
                parts.append({"type": "text", "text": part["text"]})
            else:
                raise ConfigError(f"message part {describe(part)} is neither text nor image")
        if message["role"] == "system" and all(p["type"] == "text" for p in parts):
            converted.append({"role": "system", "content": "".join(p["text"] for p in parts)})
        else:
            converted.append({"role": message["role"], "content": parts})
    return converted


def _config(config: APIAgentConfig | None, kwargs: dict) -> APIAgentConfig:
    return merge_config(APIAgentConfig, config, kwargs, "APIAgent")


class APIAgent:
    """A policy served over an OpenAI-compatible ``/chat/completions`` endpoint.

    Args:
        base_url: server root including ``/v1``.
        model: the served model name.
        config: an :class:`APIAgentConfig`; any field may also be passed as a keyword.

    Attributes:
        last_outputs: one :class:`~mira_env.actions.ParsedAction` per observation of the last call.
        requests_sent: HTTP requests sent so far (retries included).
    """

    def __init__(self, base_url: str | None = None, model: str | None = None, *,
                 config: APIAgentConfig | None = None, **kwargs: Any) -> None:
        if base_url is not None:
            kwargs["base_url"] = base_url
        if model is not None:
            kwargs["model"] = model
        self.config = _config(config, kwargs)
        if self.config.api_key_env is not None and not os.environ.get(self.config.api_key_env):
            raise ConfigError(f"api_key_env={self.config.api_key_env!r}: that environment variable is not set; "
                              f"export {self.config.api_key_env}=<your key> or pass api_key_env=None")
        self.name = f"api:{self.config.model}"
        self.last_outputs: list[ParsedAction] = []
        self.episodes = EpisodeConversations(edit_budget=self.config.edit_budget,
                                             system_prompt=self.config.system_prompt)
        self._lock = threading.Lock()
        self._client = None
        self._sent_closed = self._sent_before = 0

    def __repr__(self) -> str:
        c = self.config
        return (f"APIAgent(base_url={c.base_url!r}, model={c.model!r}, api_key_env={c.api_key_env!r}, "
                f"concurrency={c.concurrency}, max_retries={c.max_retries})")

    # ------------------------------------------------------------------ lifecycle
    @property
    def client(self):
        """The agent's :class:`mira_env.http.HTTPClient` (created on first use)."""
        with self._lock:
            if self._client is None:
                from mira_env.http import HTTPClient

                c = self.config
                key = os.environ.get(c.api_key_env, "") if c.api_key_env else ""
                self._client = HTTPClient(c.base_url, bearer_token=key or None, timeout_s=c.timeout_s,
                                          max_retries=c.max_retries, backoff_s=c.backoff_s,
                                          max_backoff_s=c.max_backoff_s, max_connections=c.concurrency,
                                          retry_status=_RETRY_STATUS)
                self._sent_before = self._sent_closed
            return self._client

    @property
    def requests_sent(self) -> int:
        """HTTP requests sent so far (retries included)."""
        client = self._client
        return self._sent_closed + (client.requests_sent - self._sent_before if client is not None else 0)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        if self._client is not None:
            self._sent_closed = self.requests_sent
            self._client.close()
            self._client = None

    def __enter__(self) -> "APIAgent":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def reset(self, n: int | None = None) -> None:
        """Forget the last outputs and every episode's conversation."""
        self.last_outputs = []
        self.episodes.reset()

    # ------------------------------------------------------------------ acting
    def conversations(self, observations: Sequence[Mapping[str, Any]],
                      infos: Sequence[Mapping[str, Any]] | None = None) -> list[list[dict]]:
        """The processor-style conversations :meth:`act` sends (tool turns already moved into user turns)."""
        if self.config.conversation == "multi_turn":
            return [tool_turns_as_user(c) for c in self.episodes.messages(observations, infos)]
        return batch_messages(observations, system_prompt=self.config.system_prompt)

    def act(self, observations: Sequence[Mapping[str, Any]],
            infos: Sequence[Mapping[str, Any]] | None = None) -> list[str]:
        """One action per observation; requests run concurrently (``concurrency`` at a time)."""
        conversations = self.conversations(observations, infos)
        results = self.complete_many(conversations)
        limit = self.config.max_instruction_length
        outputs = []
        for result in results:
            if isinstance(result, APIAgentError):
                outputs.append(ParsedAction("", False, f"request failed: {result}", None, ""))
            else:
                outputs.append(parse_action(result, max_length=limit))
        self.last_outputs = outputs
        if self.config.conversation == "multi_turn":
            self.episodes.record([r if isinstance(r, str) else "" for r in results])
        return [parsed.action for parsed in outputs]

    def complete_many(self, conversations: Sequence[list[dict]]) -> list[str | APIAgentError]:
        """The answer text of every conversation; with ``on_error='empty'`` failures come back as errors."""
        if not conversations:
            return []
        workers = min(self.config.concurrency, len(conversations))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mira-api") as pool:
            futures = [pool.submit(self._complete_safely, conv) for conv in conversations]
            results = [future.result() for future in futures]
        if self.config.on_error == "raise":
            for result in results:
                if isinstance(result, APIAgentError):
                    raise result
        return results

    def _complete_safely(self, conversation: list[dict]) -> str | APIAgentError:
        try:
            return self.complete(conversation)
        except APIAgentError as exc:
            return exc

    def complete(self, conversation: list[dict]) -> str:
        """POST one conversation to ``/chat/completions`` (with the client's retries); the answer text."""
        from mira_env.http import HTTPError

        c = self.config
        body = {"model": c.model, "messages": to_openai_messages(conversation), "max_tokens": c.max_tokens,
                "temperature": float(c.temperature), "top_p": float(c.top_p), **c.extra_body}
        try:
            response = self.client.request("POST", "/chat/completions", json=body)
        except HTTPError as exc:
            raise APIAgentError(f"chat completion failed: {exc}") from None
        return self._answer_text(response)

    def _answer_text(self, response) -> str:
        from mira_env.http import HTTPError
        from mira_env.redact import redact

        try:
            data = response.json()
            content = data["choices"][0]["message"]["content"]
        except (HTTPError, KeyError, IndexError, TypeError):
            snippet = redact(response.text[:200])
            raise APIAgentError(f"the server's answer is not a chat completion (no choices[0].message.content): "
                                f"{snippet!r}") from None
        if content is None:
            return ""
        if isinstance(content, list):  # some servers answer with content parts
            return "".join(part.get("text", "") for part in content if isinstance(part, dict))
        if not isinstance(content, str):
            raise APIAgentError(f"choices[0].message.content is {type(content).__name__}, not a str")
        return content


__all__ = ["APIAgent", "APIAgentConfig", "APIAgentError", "image_data_uri", "to_openai_messages"]
