"""Seeded editor noise that mimics how diffusion editors fail.

All probabilities are zero by default (an exact editor). Noise is drawn from a generator seeded by
the edit's seed and :attr:`EditorNoise.seed`, so the same (scene, instruction, seed) always gets the
same noise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping

from mira_env.errors import ConfigError, describe
from mira_env.validate import check_float, check_int

NOISE_KINDS = ("ignore", "wrong_object", "color_drift", "position_drift", "partial")


@dataclass(frozen=True)
class EditorNoise:
    """Failure probabilities of the shapes editor, each in [0, 1]."""

    ignore: float = field(default=0.0, metadata={
        "help": "Probability that an edit is silently not applied (image unchanged, status ok)."})
    wrong_object: float = field(default=0.0, metadata={
        "help": "Probability that an edit hits another object than the one named (one sharing its shape or "
                "colour when there is one)."})
    color_drift: float = field(default=0.0, metadata={
        "help": "Probability that the colour an edit produces (object or background) comes out as a "
                "neighbouring palette colour."})
    position_drift: float = field(default=0.0, metadata={
        "help": "Probability that the edited object ends up one cell off (a free neighbouring cell)."})
    partial: float = field(default=0.0, metadata={
        "help": "Probability that a compound instruction is only partly executed: a strict prefix of its "
                "clauses runs, and clauses the editor cannot parse are skipped instead of rejected."})
    seed: int = field(default=0, metadata={
        "help": "Mixed into every edit's seed: two editors with different noise seeds fail differently."})

    def __post_init__(self) -> None:
        for name in NOISE_KINDS:
            value = getattr(self, name)
            check_float(f"EditorNoise.{name}", value, minimum=0, maximum=1, hint="a probability")
        check_int("EditorNoise.seed", self.seed, minimum=0)

    @property
    def active(self) -> bool:
        """Whether any failure probability is above zero."""
        return any(getattr(self, name) > 0 for name in NOISE_KINDS)

    @classmethod
    def uniform(cls, level: float, seed: int = 0) -> "EditorNoise":
        """Every failure kind at probability ``level``."""
        return cls(**{name: level for name in NOISE_KINDS}, seed=seed)

    @classmethod
    def coerce(cls, value: "EditorNoise | Mapping[str, Any] | float | None") -> "EditorNoise":
        """``None`` (no noise), a float (:meth:`uniform`), a dict of fields, or an instance."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return cls.uniform(float(value))
        if isinstance(value, Mapping):
            names = {f.name for f in fields(cls)}
            unknown = sorted(set(value) - names)
            if unknown:
                raise ConfigError(f"unknown noise setting(s) {unknown}; known: {sorted(names)}")
            return cls(**value)
        raise ConfigError(f"noise={describe(value)}: expected None, a probability, a dict of "
                          f"{list(NOISE_KINDS)} or an EditorNoise")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
