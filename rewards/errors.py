"""Exception hierarchy of ``rewards``: one base class, every message names the bad value and the fix."""

from __future__ import annotations

from mira_env.errors import MiraError, choice_message, describe


class RewardError(MiraError, ValueError):
    """Base class of every error raised by the ``rewards`` package (bad config, unknown term, ...)."""


class RewardConfigError(RewardError):
    """A reward configuration is invalid: unknown term, wrong-length weights, bad option value."""


class MissingExtraError(RewardError, ImportError):
    """An optional dependency of the chosen backend is not installed; the message names the extra."""


def missing_extra(package: str, extra: str, what: str) -> MissingExtraError:
    """A :class:`MissingExtraError` for ``package`` needed by ``what``, naming ``pip install 'mira-env[extra]'``."""
    return MissingExtraError(f"{what} needs the '{package}' package, which is not installed; "
                             f"install it with: pip install 'mira-env[{extra}]'")


def choice_error(name: str, value: object, choices) -> RewardConfigError:
    """A :class:`RewardConfigError` for ``value`` not being one of ``choices``."""
    return RewardConfigError(choice_message(name, value, choices))


__all__ = ["MissingExtraError", "RewardConfigError", "RewardError", "choice_error", "describe", "missing_extra"]
