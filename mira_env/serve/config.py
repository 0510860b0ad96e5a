"""``ServiceConfig`` (what every service shares) and ``ServeConfig`` (``mira serve editor``)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field

from mira_env.errors import ConfigError, describe
from mira_env.serve.protocol import Limits
from mira_env.validate import check_choice, check_float, check_int, check_ints

BACKENDS = ("ray", "threaded")


@dataclass
class ServiceConfig:
    """Settings every service shares (backend, replicas, placement, batching, address, auth, bounds)."""

    backend: str = field(default="ray", metadata={
        "help": "ray: a Ray Serve deployment (replicas, GPUs, @serve.batch dynamic batching); threaded: one "
                "process, no Ray (development, tests), one model call per request."})
    replicas: int = field(default=1, metadata={"help": "Replicas (Ray): each loads its own model."})
    gpus_per_replica: float = field(default=0.0, metadata={
        "help": "GPUs per replica (Ray num_gpus; fractions share a GPU). 0 = CPU models."})
    cpus_per_replica: float = field(default=1.0, metadata={
        "help": "CPUs per replica (Ray num_cpus; fractions such as 0.25 fit several replicas on a small machine)."})
    max_batch: int = field(default=8, metadata={
        "help": "Most items one replica runs in one model call (@serve.batch max_batch_size)."})
    batch_wait_ms: float = field(default=10.0, metadata={
        "help": "How long a replica waits for more items before running a partial batch (batch_wait_timeout_s)."})
    max_ongoing_requests: int = field(default=64, metadata={
        "help": "HTTP requests one replica holds at once (each may carry many edits); the Serve router sends "
                "others elsewhere. A small value (the client's chunks per replica) balances replicas best."})
    host: str = field(default="127.0.0.1", metadata={
        "help": "Address to bind. 127.0.0.1 (default) serves this machine only; 0.0.0.0 serves the network (set "
                "a token)."})
    port: int = field(default=8100, metadata={"help": "Port to bind (0 = any free port, threaded backend only)."})
    address: str | None = field(default=None, metadata={
        "help": "Ray cluster address ('auto', 'ray://head:10001'); unset = start a local Ray instance."})
    token_env: str | None = field(default="MIRA_EDITOR_TOKEN", metadata={
        "help": "Environment variable holding the auth token; when it is set, clients must send "
                "'Authorization: Bearer <token>'. Empty = no auth."})
    max_request_mb: float = field(default=256.0, metadata={"help": "Largest request body, in MiB (413 above)."})
    app_name: str = field(default="mira-editor", metadata={"help": "Ray Serve application name."})
    route_prefix: str = field(default="/", metadata={
        "help": "URL prefix of the application (Ray): two services on one Ray cluster share its HTTP port, so give "
                "the second its own prefix (e.g. '/judge'; clients then use http://host:port/judge)."})

    def __post_init__(self) -> None:
        check_choice("backend", self.backend, BACKENDS)
        check_ints(self, ("replicas", "max_batch", "max_ongoing_requests"))
        for name in ("gpus_per_replica", "batch_wait_ms"):
            check_float(name, getattr(self, name), minimum=0)
        for name in ("cpus_per_replica", "max_request_mb"):
            check_float(name, getattr(self, name), above=0)
        if not isinstance(self.route_prefix, str) or not self.route_prefix.startswith("/"):
            raise ConfigError(f"route_prefix={describe(self.route_prefix)} must start with '/' (e.g. '/' or '/judge')")
        check_int("port", self.port, minimum=0, maximum=65535)
        if self.port == 0 and self.backend == "ray":
            raise ConfigError("port=0 (any free port) works with backend='threaded' only; give Ray a port")
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            if self.host != "localhost":
                raise ConfigError(f"host={describe(self.host)} must be an IP address such as 127.0.0.1 or "
                                  "0.0.0.0") from None

    @property
    def max_request_bytes(self) -> int:
        return int(self.max_request_mb * 1024 * 1024)

    def token(self) -> str | None:
        """The auth token from ``token_env`` (None when unset or empty); registered for redaction."""
        if not self.token_env:
            return None
        value = os.environ.get(self.token_env) or None
        if value is not None:
            from mira_env.redact import register_secret

            register_secret(value)
        return value

    def batching(self) -> dict:
        return {"max_batch": self.max_batch, "batch_wait_ms": float(self.batch_wait_ms)}


@dataclass
class ServeConfig(ServiceConfig):
    """Settings of an editor service (``mira serve editor``)."""

    editor: str = field(default="shapes", metadata={
        "help": "Editor spec, as make_editor takes it: 'shapes', 'identity', a diffusers preset name, hub id or "
                "local folder, or 'pkg.module:factory' (your own class with edit(images, instructions, seeds))."})
    editor_kwargs: dict = field(default_factory=dict, metadata={
        "help": "JSON keyword arguments for the editor, e.g. '{\"device\": \"cuda\", \"torch_dtype\": \"bfloat16\"}'."})
    max_items: int = field(default=64, metadata={"help": "Most edits in one request (413 above)."})
    max_pixels: int = field(default=4096 * 4096, metadata={"help": "Largest image accepted, in pixels (413 above)."})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.editor, str) or not self.editor.strip():
            raise ConfigError(f"editor={describe(self.editor)} must be an editor spec such as 'shapes' or "
                              "'pkg.module:factory'")
        if self.editor.startswith("remote:"):
            raise ConfigError(f"editor={self.editor!r}: a service cannot serve a remote editor; give the editor it "
                              "should load")
        if not isinstance(self.editor_kwargs, dict):
            raise ConfigError(f"editor_kwargs={describe(self.editor_kwargs)} must be a JSON object")
        check_ints(self, ("max_items", "max_pixels"))

    @property
    def limits(self) -> Limits:
        return Limits(max_items=self.max_items, max_pixels=self.max_pixels, max_request_bytes=self.max_request_bytes)


__all__ = ["BACKENDS", "ServeConfig", "ServiceConfig"]
