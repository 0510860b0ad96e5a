"""``mira serve judge``: the local transformers VLM judge as an OpenAI-compatible chat endpoint.

The service speaks the subset of the OpenAI API that the judge's ``openai`` backend (and vLLM) use, so
ONE client path covers a hosted API, ``vllm serve <VLM>`` and this service::

    mira serve judge --model Qwen/Qwen2.5-VL-7B-Instruct --gpus_per_replica 1 --replicas 2 --port 8200
    # reward config:  judge: {backend: openai, model: Qwen/Qwen2.5-VL-7B-Instruct,
    #                         base_url: http://127.0.0.1:8200/v1, api_key_env: null}

Routes: ``GET /healthz``; ``GET /info`` (``{"service": "mira-judge", "api_version", "model", ...}``);
``GET /v1/models``; ``POST /v1/chat/completions`` with ``{"model", "messages", "max_tokens"?}`` where
message content is a string or a list of ``text`` and ``image_url`` parts (``data:image/...;base64,``
URIs only: the server fetches nothing). Decoding is greedy (a judge must be reproducible), so
``temperature`` is accepted and ignored. Answers are ``chat.completion`` objects.

On Ray Serve, conversations of concurrent requests (the SC and PQ requests of a whole GRPO batch, sent
``concurrency`` at a time by the client) are merged by ``@serve.batch`` into batched ``generate`` calls,
grouped by ``max_tokens``. Same auth token, bounds, fractional CPUs and clean SIGINT/SIGTERM stop as
the editor service (:mod:`mira_env.serve`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import functools
import io
import json
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Sequence

from mira_env.errors import ConfigError, describe
from mira_env.serve.config import ServiceConfig
from mira_env.serve.core import check_bearer
from mira_env.serve.protocol import RequestError
from mira_env.serve.runner import RunningService, start_ray_app
from mira_env.validate import check_int, check_ints

SERVICE_NAME = "mira-judge"
API_VERSION = "1.0"


@dataclass
class JudgeServeConfig(ServiceConfig):
    """Settings of a judge service (``mira serve judge``)."""

    port: int = field(default=8200, metadata={"help": "Port to bind (0 = any free port, threaded backend only)."})
    token_env: str | None = field(default="MIRA_JUDGE_TOKEN", metadata={
        "help": "Environment variable holding the auth token (clients: the judge's api_key_env). Empty = no auth."})
    app_name: str = field(default="mira-judge", metadata={"help": "Ray Serve application name."})
    model: str = field(default="", metadata={"help": "Judge VLM: hub id (Qwen/Qwen2.5-VL-7B-Instruct) or folder."})
    served_model_name: str | None = field(default=None, metadata={
        "help": "Model name clients send (and /v1/models lists); default: --model."})
    device: str = field(default="auto", metadata={"help": "auto (CUDA when available), cuda, cuda:1, cpu."})
    dtype: str = field(default="auto", metadata={"help": "auto, bfloat16, float16, float32."})
    max_new_tokens: int = field(default=256, metadata={"help": "Answer budget (requests may ask for fewer)."})
    batch_size: int = field(default=8, metadata={"help": "Conversations per model.generate call."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow the checkpoint's own code."})
    generate_kwargs: dict = field(default_factory=dict, metadata={
        "help": "JSON extra model.generate arguments, e.g. '{\"suppress_tokens\": [151655]}'."})
    max_images: int = field(default=8, metadata={"help": "Most images in one conversation (413 above)."})
    max_pixels: int = field(default=4096 * 4096, metadata={"help": "Largest image accepted, in pixels (413 above)."})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.model, str) or not self.model:
            raise ConfigError(f"model={describe(self.model)}: give the judge VLM's hub id or local folder "
                              "(e.g. --model Qwen/Qwen2.5-VL-7B-Instruct)")
        check_ints(self, ("max_new_tokens", "batch_size", "max_images", "max_pixels"))
        if not isinstance(self.generate_kwargs, dict):
            raise ConfigError(f"generate_kwargs={describe(self.generate_kwargs)} must be a JSON object")

    @property
    def name(self) -> str:
        return self.served_model_name or self.model

    def build_judge(self):
        from mira_env.rewards.judge.transformers_backend import TransformersJudge

        return TransformersJudge(self.model, device=self.device, dtype=self.dtype, max_new_tokens=self.max_new_tokens,
                                 batch_size=self.batch_size, trust_remote_code=self.trust_remote_code,
                                 generate_kwargs=dict(self.generate_kwargs))


@dataclass
class Conversation:
    """One decoded chat request: transformers-style messages (PIL images) and its answer budget."""

    messages: list[dict]
    max_tokens: int


def _image_from_uri(url: Any, max_pixels: int, where: str):
    from PIL import Image

    if not isinstance(url, str) or not url.startswith("data:image/") or ";base64," not in url:
        raise RequestError(400, f"{where}: only data:image/...;base64, URIs are accepted (the judge service fetches "
                                f"no URLs), got {describe(url, 60)}")
    try:
        data = base64.b64decode(url.split(",", 1)[1], validate=True)
        image = Image.open(io.BytesIO(data))
    except (binascii.Error, ValueError, OSError) as exc:
        raise RequestError(400, f"{where}: not a readable base64 image ({type(exc).__name__}: {exc})") from None
    if image.width * image.height > max_pixels:
        raise RequestError(413, f"{where}: image is {image.width}x{image.height}, over max_pixels={max_pixels}")
    return image.convert("RGB")


class JudgeService:
    """Request handling of one judge replica (framework-independent; see the module docstring)."""

    def __init__(self, judge: Any, config: JudgeServeConfig, token: str | None = None) -> None:
        self.judge, self.config, self.token = judge, config, token
        self._lock = threading.Lock()
        self.calls = 0  # generate calls
        self.batch_sizes: list[int] = []

    def info(self) -> dict:
        from mira_env import __version__

        return {"api_version": API_VERSION, "service": SERVICE_NAME, "mira_env_version": __version__,
                "model": self.config.name, "max_new_tokens": self.config.max_new_tokens,
                "batching": self.config.batching(), "auth": self.token is not None,
                "limits": {"max_images": self.config.max_images, "max_pixels": self.config.max_pixels,
                           "max_request_bytes": self.config.max_request_bytes}}

    def parse(self, raw: bytes, content_length: str | None = None) -> Conversation:
        limit = self.config.max_request_bytes
        if (content_length and content_length.isdigit() and int(content_length) > limit) or len(raw) > limit:
            raise RequestError(413, f"request body is over max_request_bytes={limit}")
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestError(400, f"the body is not JSON ({exc})") from None
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            raise RequestError(400, "the body must be a chat-completions object with a non-empty 'messages' list")
        model = body.get("model")
        if model not in (None, self.config.name):
            raise RequestError(404, f"model {model!r} is not served here; this server serves {self.config.name!r}")
        max_tokens = body.get("max_tokens", body.get("max_completion_tokens")) or self.config.max_new_tokens
        check_int("max_tokens", max_tokens, error=functools.partial(RequestError, 400))
        messages, images = [], 0
        for m_index, message in enumerate(body["messages"]):
            if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant"):
                raise RequestError(400, f"messages[{m_index}] must be an object with role system, user or assistant")
            content = message.get("content")
            parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
            if not isinstance(parts, list):
                raise RequestError(400, f"messages[{m_index}].content must be a string or a list of parts")
            converted = []
            for p_index, part in enumerate(parts):
                where = f"messages[{m_index}].content[{p_index}]"
                kind = part.get("type") if isinstance(part, dict) else None
                if kind == "text" and isinstance(part.get("text"), str):
                    converted.append({"type": "text", "text": part["text"]})
                elif kind == "image_url":
                    images += 1
                    if images > self.config.max_images:
                        raise RequestError(413, f"more than max_images={self.config.max_images} images in one request")
                    url = part.get("image_url", {}).get("url") if isinstance(part.get("image_url"), dict) else None
                    converted.append({"type": "image", "image": _image_from_uri(url, self.config.max_pixels, where)})
                else:
                    raise RequestError(400, f"{where} must be a 'text' or 'image_url' part, got {describe(part, 60)}")
            messages.append({"role": message["role"], "content": converted})
        return Conversation(messages, min(max_tokens, self.config.max_new_tokens))

    def run_batch(self, conversations: Sequence[Conversation]) -> list[dict]:
        """One completion object (or ``{"error": ...}``) per conversation; one generate call per max_tokens."""
        out: list[dict] = [{}] * len(conversations)
        groups: dict[int, list[int]] = defaultdict(list)
        for index, conversation in enumerate(conversations):
            groups[conversation.max_tokens].append(index)
        for max_tokens, indices in groups.items():
            with self._lock:
                self.calls += 1
                self.batch_sizes.append(len(indices))
                try:
                    answers = self.judge.generate_messages([conversations[i].messages for i in indices], max_tokens)
                except Exception as exc:  # noqa: BLE001 - the group's requests fail with the reason
                    answers = [exc] * len(indices)
            for index, answer in zip(indices, answers):
                out[index] = self._completion(answer)
        return out

    def _completion(self, answer: Any) -> dict:
        if isinstance(answer, BaseException):
            return {"error": f"{type(answer).__name__}: {answer}"}
        return {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
                "model": self.config.name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": str(answer)},
                             "finish_reason": "stop"}]}

    def handle(self, method: str, path: str, headers: dict, raw: bytes, run=None) -> tuple[int, dict]:
        try:
            if path == "/healthz":
                return 200, {"status": "ok"}
            check_bearer(headers.get("authorization"), self.token, "the judge's api_key_env names the variable")
            if path == "/info" and method == "GET":
                return 200, self.info()
            if path == "/v1/models" and method == "GET":
                return 200, {"object": "list", "data": [{"id": self.config.name, "object": "model",
                                                         "owned_by": SERVICE_NAME}]}
            if path == "/v1/chat/completions" and method == "POST":
                conversation = self.parse(raw, headers.get("content-length"))
                (result,) = (run or self.run_batch)([conversation])
                return (500, result) if "error" in result else (200, result)
            return 404, {"error": f"no route {method} {path}; routes: GET /healthz, /info, /v1/models, "
                                  "POST /v1/chat/completions"}
        except RequestError as exc:
            return exc.status, {"error": str(exc)}


def judge_app(config: JudgeServeConfig, token: str | None = None) -> Any:
    """The bound Ray Serve application of a judge service."""
    from ray import serve
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    from mira_env.serve.ray_app import strip_prefix

    @serve.deployment(name="judge", num_replicas=config.replicas,
                      ray_actor_options={"num_cpus": float(config.cpus_per_replica),
                                         "num_gpus": float(config.gpus_per_replica)},
                      max_ongoing_requests=config.max_ongoing_requests)
    class JudgeDeployment:
        def __init__(self, settings: dict, auth_token: str | None) -> None:
            cfg = JudgeServeConfig(**settings)
            self.service = JudgeService(cfg.build_judge(), cfg, auth_token)
            self.judge_one.set_max_batch_size(cfg.max_batch)
            self.judge_one.set_batch_wait_timeout_s(cfg.batch_wait_ms / 1000.0)
            self.prefix = cfg.route_prefix

        @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
        async def judge_one(self, conversations: list) -> list[dict]:
            return await asyncio.to_thread(self.service.run_batch, conversations)

        async def __call__(self, request: Request) -> JSONResponse:
            headers = {key.lower(): value for key, value in request.headers.items()}
            path, method = strip_prefix(request.url.path, self.prefix), request.method
            if path == "/v1/chat/completions" and method == "POST":
                try:
                    check_bearer(headers.get("authorization"), self.service.token)
                    conversation = self.service.parse(await request.body(), headers.get("content-length"))
                except RequestError as exc:
                    return JSONResponse({"error": str(exc)}, status_code=exc.status)
                result = await self.judge_one(conversation)
                return JSONResponse(result, status_code=500 if "error" in result else 200)
            status, body = self.service.handle(method, path, headers, b"")
            return JSONResponse(body, status_code=status)

    return JudgeDeployment.bind(dataclasses.asdict(config), token)


def start_judge_service(config: JudgeServeConfig, health_timeout_s: float = 600.0) -> RunningService:
    """Start the judge service ``config`` describes and return once ``/healthz`` answers."""
    token = config.token()
    if config.backend == "threaded":
        from mira_env.serve.threaded import ThreadedServer

        service = JudgeService(config.build_judge(), config, token)
        server = ThreadedServer(service.handle, config.host, config.port, config.max_request_bytes).start()
        return RunningService(server.url, "threaded", server.stop, service)
    return start_ray_app(judge_app(config, token), config, health_timeout_s)


__all__ = ["JudgeServeConfig", "JudgeService", "judge_app", "start_judge_service"]
