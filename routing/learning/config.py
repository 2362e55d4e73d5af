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
