"""Credential redaction for anything that may reach a log, an error message or a report.

One module for every client that holds a secret (the HTTP client, the API agent, the judge's
OpenAI backend, the editor service's auth token)::

    from mira_env.redact import register_secret, redact, redact_obj, error_text

    register_secret(api_key)          # this exact value is masked from now on, everywhere
    log.info(redact(message))         # str -> str
    record = redact_obj(record)       # dicts / lists / tuples / str, recursively (a copy)
    raise MyError(error_text(exc))    # an exception's message with its cause/context chain

What is masked (each replaced by ``***``):

* every value passed to :func:`register_secret` (exact match; values shorter than 4 characters are
  refused, since masking them would mangle ordinary text);
* the ``user:password@`` part of URLs (``https://u:p@host`` -> ``https://***@host``);
* ``Authorization: Bearer ...`` / ``Basic ...`` header values, and ``Bearer <token>`` anywhere;
* ``api_key=...`` / ``token=...`` / ``"api_key": "..."`` style assignments (the key name stays);
* key-like strings: ``sk-...``, ``sk-proj-...``, ``hf_...``, ``ghp_...``/``github_pat_...``,
  ``xoxb-...``, ``AKIA...`` (AWS access key ids).
"""

from __future__ import annotations

import re
import threading
from typing import Any

MASK = "***"
_MIN_SECRET_LEN = 4

_lock = threading.Lock()
_secrets: set[str] = set()

# user:password@ in any scheme://; keeps the scheme and the host.
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)[^/\s:@]+(?::[^/\s@]*)?@")
# Authorization header values (Bearer, Basic, Token or a bare value).
_AUTH_HEADER = re.compile(
    r"(?P<key>(?:proxy-)?authorization['\"]?\s*[:=]\s*['\"]?)(?:(?P<scheme>bearer|basic|token)\s+)?[^\s'\",}]+",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<key>\bbearer\s+)[A-Za-z0-9\-._~+/=]{4,}", re.IGNORECASE)
# key=value / "key": "value" for names that hold secrets.
_ASSIGN = re.compile(
    r"(?P<key>\b(?:[a-z0-9_\-]*?(?:api[_\-]?key|secret|password|passwd|token|access[_\-]?key))"
    r"['\"]?\s*[:=]\s*['\"]?)(?P<value>[^\s'\",&}]{4,})",
    re.IGNORECASE,
)
_KEY_LIKE = re.compile(
    r"\b(?:sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{8,}"
    r"|hf_[A-Za-z0-9]{8,}"
    r"|gh[pousr]_[A-Za-z0-9]{16,}"
    r"|github_pat_[A-Za-z0-9_]{16,}"
    r"|xox[abprs]-[A-Za-z0-9\-]{8,}"
    r"|AKIA[0-9A-Z]{16})\b"
)


def register_secret(value: str) -> None:
    """Mask this exact value in everything :func:`redact` sees from now on (process-wide).

    ``None`` and empty strings are ignored (an unset key); a value shorter than 4 characters is
    refused with ``ValueError``, since masking it would mangle ordinary text.
    """
    if value is None or value == "":
        return
    if not isinstance(value, str):
        raise TypeError(f"register_secret takes a str, got {type(value).__name__}")
    value = value.strip()
    if len(value) < _MIN_SECRET_LEN:
        raise ValueError(
            f"secret too short to redact safely ({len(value)} characters, at least {_MIN_SECRET_LEN} needed)"
        )
    with _lock:
        _secrets.add(value)


def clear_secrets() -> None:
    """Forget every registered secret (for tests)."""
    with _lock:
        _secrets.clear()


def redact(text: str) -> str:
    """``text`` with registered secrets, URL credentials, auth headers and key-like strings masked."""
    if not isinstance(text, str):
        text = str(text)
    if not text:
        return text
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    text = _URL_CREDENTIALS.sub(lambda m: m.group("scheme") + MASK + "@", text)
    text = _AUTH_HEADER.sub(
        lambda m: m.group("key") + (m.group("scheme") + " " if m.group("scheme") else "") + MASK, text
    )
    text = _BEARER.sub(lambda m: m.group("key") + MASK, text)
    text = _ASSIGN.sub(lambda m: m.group("key") + MASK, text)
    text = _KEY_LIKE.sub(MASK, text)
    return text


def redact_obj(obj: Any) -> Any:
    """A copy of ``obj`` with every string inside dicts, lists and tuples redacted.

    Dict values under secret-looking keys (``api_key``, ``authorization``, ``token``, ``password``...)
    are masked whole whatever they hold. Other types come back unchanged.
    """
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if isinstance(key, str) and _is_secret_key(key) and value not in (None, ""):
                out[key] = MASK
            else:
                out[redact(key) if isinstance(key, str) else key] = redact_obj(value)
        return out
    if isinstance(obj, list):
        return [redact_obj(v) for v in obj]
    if isinstance(obj, tuple):
        items = [redact_obj(v) for v in obj]
        return type(obj)(*items) if hasattr(obj, "_fields") else tuple(items)
    return obj


_SECRET_KEY = re.compile(
    r"^(?:.*(?:api[_\-]?key|secret|password|passwd|access[_\-]?key)|(?:.*[_\-])?token|(?:proxy-)?authorization|cookie)$",
    re.IGNORECASE,
)


def _is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.match(key.strip()))


def error_text(exc: BaseException) -> str:
    """The redacted ``Type: message`` of ``exc`` followed by its ``__cause__`` / ``__context__`` chain.

    Each link is joined with `` <- caused by: ``; a cycle or a chain longer than 8 stops the walk.
    """
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(parts) < 8:
        seen.add(id(current))
        message = str(current)
        name = type(current).__name__
        parts.append(f"{name}: {message}" if message else name)
        if current.__cause__ is not None:
            current = current.__cause__
        elif current.__context__ is not None and not current.__suppress_context__:
            current = current.__context__
        else:
            current = None
    return redact(" <- caused by: ".join(parts))
