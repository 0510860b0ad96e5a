"""Exception hierarchy of ``mira_env``.

One base class per area; every message names the bad value, its type and the fix.
"""

from __future__ import annotations


class MiraError(Exception):
    """Base class of every error raised by mira-env."""


class ConfigError(MiraError, ValueError):
    """A configuration value is invalid (wrong type, out of range, unknown choice)."""


class TaskError(MiraError, ValueError):
    """A task record cannot be loaded: missing or corrupt image, bad field, path outside the root."""


class ActionError(MiraError, TypeError):
    """An action passed to ``EditEnv.step`` is not an instruction string."""


class EditorError(MiraError, RuntimeError):
    """An editor could not be built or could not execute a batch of edits."""


def describe(value: object, limit: int = 80) -> str:
    """``repr`` of a value cut to ``limit`` characters, followed by its type, for error messages."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{text} (type {type(value).__name__})"


def choice_message(name: str, value: object, choices) -> str:
    """``name=<value> (type T) is not one of: 'a', 'b'``: the wording of every choice error."""
    listed = ", ".join(repr(c) for c in choices)
    return f"{name}={describe(value)} is not one of: {listed}"


def choice_error(name: str, value: object, choices) -> ConfigError:
    """A ``ConfigError`` for ``value`` not being one of ``choices``."""
    return ConfigError(choice_message(name, value, choices))


def error_message(exc: BaseException) -> str:
    """The message of ``exc`` for one ``error:`` line: redacted (:mod:`mira_env.redact`), with the messages of
    its cause chain appended, on one line."""
    from mira_env.redact import error_text

    text = error_text(exc)
    prefix = f"{type(exc).__name__}: "
    text = text[len(prefix):] if text.startswith(prefix) else text
    return " ".join(text.split())
