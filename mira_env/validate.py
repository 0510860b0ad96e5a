"""Validation helpers: the one place that checks config values and words the error.

Every config dataclass and constructor of the project checks its numbers with these instead of writing
``isinstance(value, bool) or not isinstance(value, int) or value < 1`` by hand. Each error names the field,
shows the bad value with its type (:func:`mira_env.errors.describe`) and says what is expected, e.g.
``ConfigError: max_steps=0 (type int) must be a positive int``.

>>> check_int("max_steps", 3)
3
>>> check_int("seed", -1, minimum=0)
Traceback (most recent call last):
...
mira_env.errors.ConfigError: seed=-1 (type int) must be an int >= 0
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable

from mira_env.errors import ConfigError, choice_message, describe


def _expected(minimum: int | float | None, maximum: int | float | None, kind: str, above: bool = False) -> str:
    """``minimum`` is exclusive when ``above``."""
    article = "an" if kind == "int" else "a"
    if minimum == 1 and maximum is None and kind == "int":
        return "a positive int"
    if minimum is not None and maximum is not None:
        return f"{article} {kind} in {'(' if above else '['}{minimum}, {maximum}]"
    if minimum is not None:
        return f"{article} {kind} {'>' if above else '>='} {minimum}"
    if maximum is not None:
        return f"{article} {kind} <= {maximum}"
    return f"{article} {kind}"


def check_int(name: str, value: Any, *, minimum: int | None = 1, maximum: int | None = None, allow_none: bool = False,
              error: Callable[[str], Exception] = ConfigError, hint: str = "") -> Any:
    """Return ``value`` if it is an int (not a bool) within ``[minimum, maximum]`` (or None when ``allow_none``);
    raise ``error`` naming ``name`` otherwise. ``hint`` is appended to the message (say where the value comes from)."""
    if value is None and allow_none:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum) or (
            maximum is not None and value > maximum):
        expected = _expected(minimum, maximum, "int") + (" or None" if allow_none else "")
        raise error(f"{name}={describe(value)} must be {expected}" + (f" ({hint})" if hint else ""))
    return value


def check_float(name: str, value: Any, *, minimum: float | None = None, maximum: float | None = None,
                above: float | None = None, allow_none: bool = False, error: Callable[[str], Exception] = ConfigError,
                hint: str = "") -> Any:
    """Return ``value`` if it is a finite real number (int or float, not a bool) within ``[minimum, maximum]``
    (and ``> above`` when given: an exclusive lower bound, e.g. a temperature) or None when ``allow_none``;
    raise ``error`` naming ``name`` otherwise."""
    if value is None and allow_none:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or (
            minimum is not None and value < minimum) or (maximum is not None and value > maximum) or (
            above is not None and value <= above):
        low = above if above is not None else minimum
        expected = "a finite " + _expected(low, maximum, "number", above is not None)[2:] + (
            " or None" if allow_none else "")
        raise error(f"{name}={describe(value)} must be {expected}" + (f" ({hint})" if hint else ""))
    return value


def check_ints(obj: Any, names: Iterable[str], **kwargs: Any) -> None:
    """:func:`check_int` on each attribute ``names`` of ``obj`` (a dataclass in its ``__post_init__``)."""
    for name in names:
        check_int(name, getattr(obj, name), **kwargs)


def check_choice(name: str, value: Any, choices: Iterable[Any], *, error: Callable[[str], Exception] = ConfigError) -> Any:
    """Return ``value`` if it is one of ``choices``; raise ``error`` listing them otherwise."""
    options = list(choices)
    if value not in options:
        raise error(choice_message(name, value, options))
    return value
