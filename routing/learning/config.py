"""A tenant's learning settings: the ``learning`` block of its routing policy.

``enabled`` (default off): the gateway predicts each candidate's quality for the prompt
from the tenant's outcome memory, and keeps each served request's prompt embedding for
``LEARNING_FEEDBACK_DAYS`` so feedback on it can join the memory. ``store_prompts``
(default off): outcomes keep their prompt text too (otherwise only the embedding and the
hashed word features are stored, never the text).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULTS: Mapping[str, Any] = {"enabled": False, "store_prompts": False}


class LearningConfigError(ValueError):
    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def clean_learning(value: Any, field: str = "learning") -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise LearningConfigError(
            f"{field} must be an object with any of {', '.join(DEFAULTS)}.", field
        )
    cleaned: dict[str, Any] = {}
    for key, item in value.items():
        f = f"{field}.{key}"
        if key not in DEFAULTS:
            raise LearningConfigError(
                f"{f} is not a learning setting; expected any of {', '.join(DEFAULTS)}.", f
            )
        if not isinstance(item, bool):
            raise LearningConfigError(f"{f} must be true or false.", f)
        cleaned[key] = item
    return cleaned


@dataclass(frozen=True, slots=True)
class LearningSettings:
    enabled: bool = False
    store_prompts: bool = False

    @classmethod
    def from_state(cls, raw: Mapping[str, Any] | None) -> LearningSettings:
        merged = {**DEFAULTS, **(raw or {})}
        return cls(enabled=bool(merged["enabled"]), store_prompts=bool(merged["store_prompts"]))


OFF = LearningSettings()


# --------------------------------------------------------------------------- optimization
#
# The ``optimization`` block of the policy: the weekly weight optimization.
#
# ``mode``: off | propose (default: a weekly row says what it would change, applied by
# an admin) | apply (applied when it does better on held-out outcomes). ``method``:
# outcome (weights chosen on held-out outcomes) | variance (re-weighting by how much the
# models differ on each signal). ``goal``: what "better" means; ``auto`` is the policy's
# objective (``balanced`` for custom weights). ``quality_target``: for the balanced and
# minimize_latency goals, the held-out quality to keep, as a fraction of the best single
# model's. ``day``/``hour``: when it runs, in the tenant's time zone. ``window_days``: the
# outcomes it learns from.

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
OPTIMIZATION_MODES = ("off", "propose", "apply")
OPTIMIZATION_METHODS = ("outcome", "variance")
OPTIMIZATION_GOALS = ("auto", "balanced", "maximize_quality", "minimize_cost", "minimize_latency")
MAX_WINDOW_DAYS = 90

OPTIMIZATION_DEFAULTS: Mapping[str, Any] = {
    "mode": "propose",
    "method": "outcome",
    "goal": "auto",
    "quality_target": 0.95,
    "day": "sunday",
    "hour": 2,
    "window_days": 7,
}


def _choice(value: Any, f: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise LearningConfigError(f"{f} must be one of {', '.join(choices)}.", f)
    return str(value)


def _integer(value: Any, f: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise LearningConfigError(f"{f} must be an integer between {lo} and {hi}.", f)
    return value


def clean_optimization(value: Any, field: str = "optimization") -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise LearningConfigError(
            f"{field} must be an object with any of {', '.join(OPTIMIZATION_DEFAULTS)}.", field
        )
    cleaned: dict[str, Any] = {}
    for key, item in value.items():
        f = f"{field}.{key}"
        if key == "mode":
            cleaned[key] = _choice(item, f, OPTIMIZATION_MODES)
        elif key == "method":
            cleaned[key] = _choice(item, f, OPTIMIZATION_METHODS)
        elif key == "goal":
            cleaned[key] = _choice(item, f, OPTIMIZATION_GOALS)
        elif key == "day":
            cleaned[key] = _choice(item.lower() if isinstance(item, str) else item, f, WEEKDAYS)
        elif key == "hour":
            cleaned[key] = _integer(item, f, 0, 23)
        elif key == "window_days":
            cleaned[key] = _integer(item, f, 1, MAX_WINDOW_DAYS)
        elif key == "quality_target":
            ok = isinstance(item, int | float) and not isinstance(item, bool)
            if not ok or not 0 < item <= 1:
                raise LearningConfigError(f"{f} must be a number above 0 and at most 1.", f)
            cleaned[key] = float(item)
        else:
            raise LearningConfigError(
                f"{f} is not an optimization setting; expected any of "
                f"{', '.join(OPTIMIZATION_DEFAULTS)}.",
                f,
            )
    return cleaned


@dataclass(frozen=True, slots=True)
class OptimizationSettings:
    mode: str = "propose"
    method: str = "outcome"
    goal: str = "auto"
    quality_target: float = 0.95
    day: str = "sunday"
    hour: int = 2
    window_days: int = 7

    @classmethod
    def from_state(cls, raw: Mapping[str, Any] | None) -> OptimizationSettings:
        merged = {**OPTIMIZATION_DEFAULTS, **(raw or {})}
        return cls(**{k: merged[k] for k in OPTIMIZATION_DEFAULTS})

    @property
    def weekday(self) -> int:
        return WEEKDAYS.index(self.day)

    def resolved_goal(self, objective: str) -> str:
        if self.goal != "auto":
            return self.goal
        return objective if objective in OPTIMIZATION_GOALS else "balanced"
