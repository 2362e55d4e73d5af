"""A tenant's cache settings: the ``cache`` block of its routing policy.

``mode``: ``off`` (the default), ``exact`` (identical requests only) or ``semantic`` (exact
first, then the nearest earlier request of the same partition, if similar enough and no
guard objects). ``ttl_seconds`` bounds how long an answer is served; ``similarity_threshold``
(cosine) and ``embedder`` apply to semantic lookups.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MODES = ("off", "exact", "semantic")
# Embedders a policy may name (routing.cache.embedders; "provider" needs a target, not yet
# selectable here). Each has its measured default threshold (embedders.THRESHOLDS).
EMBEDDERS = ("wordllama", "minilm")
MAX_TTL_SECONDS = 30 * 86_400
DEFAULTS: Mapping[str, Any] = {
    "mode": "off",
    "ttl_seconds": 3600,
    "similarity_threshold": 0.75,  # wordllama's, measured by bench/cache_eval.py
    "embedder": "wordllama",
}


class CacheConfigError(ValueError):
    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def clean_cache(value: Any, field: str = "cache") -> dict[str, Any]:
    """The keys given in ``value``, validated. Raises CacheConfigError naming the field."""
    if not isinstance(value, Mapping):
        raise CacheConfigError(
            f"{field} must be an object with any of {', '.join(DEFAULTS)}.", field
        )
    cleaned: dict[str, Any] = {}
    for key, item in value.items():
        f = f"{field}.{key}"
        if key == "mode":
            if item not in MODES:
                raise CacheConfigError(f"{f} must be one of {', '.join(MODES)}.", f)
            cleaned[key] = item
        elif key == "ttl_seconds":
            if (
                isinstance(item, bool)
                or not isinstance(item, int)
                or not 1 <= item <= MAX_TTL_SECONDS
            ):
                raise CacheConfigError(
                    f"{f} must be a whole number of seconds from 1 to {MAX_TTL_SECONDS}.", f
                )
            cleaned[key] = item
        elif key == "similarity_threshold":
            if isinstance(item, bool) or not isinstance(item, int | float) or not 0.5 <= item <= 1:
                raise CacheConfigError(f"{f} must be a number from 0.5 to 1.", f)
            cleaned[key] = float(item)
        elif key == "embedder":
            if item not in EMBEDDERS:
                raise CacheConfigError(f"{f} must be one of {', '.join(EMBEDDERS)}.", f)
            from routing.cache.embedders import EmbedderUnavailable, get_embedder

            try:
                get_embedder(item)  # loaded once per process
            except EmbedderUnavailable as exc:
                raise CacheConfigError(f"{f}: {item} cannot be used here ({exc}).", f) from None
            cleaned[key] = item
        else:
            raise CacheConfigError(
                f"{f} is not a cache setting; expected any of {', '.join(DEFAULTS)}.", f
            )
    return cleaned


@dataclass(frozen=True, slots=True)
class CacheSettings:
    mode: str = "off"
    ttl_seconds: int = 3600
    similarity_threshold: float = 0.75
    embedder: str = "wordllama"

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    @classmethod
    def from_state(cls, raw: Mapping[str, Any] | None) -> CacheSettings:
        merged = {**DEFAULTS, **(raw or {})}
        return cls(
            mode=str(merged["mode"]),
            ttl_seconds=int(merged["ttl_seconds"]),
            similarity_threshold=float(merged["similarity_threshold"]),
            embedder=str(merged["embedder"]),
        )


OFF = CacheSettings()
