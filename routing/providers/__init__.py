"""Provider adapters, one per wire format, named in one registry and loaded lazily.

Adding a provider: one new module with an `Adapter` subclass, one line in REGISTRY, one test
file. Nothing else (views, engine, billing) changes.
"""

from __future__ import annotations

import importlib
import threading

from routing.providers.base import Adapter

REGISTRY: dict[str, str] = {
    "openai": "routing.providers.openai.OpenAIAdapter",
    "azure": "routing.providers.azure.AzureOpenAIAdapter",
    "anthropic": "routing.providers.anthropic.AnthropicAdapter",
    "gemini": "routing.providers.gemini.GeminiAdapter",
    "ollama": "routing.providers.ollama.OllamaAdapter",
}

_instances: dict[str, Adapter] = {}
_lock = threading.Lock()


def get_adapter(kind: str) -> Adapter:
    """The shared adapter for a wire format (adapters are stateless, so one per kind)."""
    adapter = _instances.get(kind)
    if adapter is not None:
        return adapter
    try:
        path = REGISTRY[kind]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise KeyError(f"unknown provider kind {kind!r}; known kinds: {known}") from None
    with _lock:
        adapter = _instances.get(kind)
        if adapter is None:
            module_name, _, class_name = path.rpartition(".")
            cls = getattr(importlib.import_module(module_name), class_name)
            if not (isinstance(cls, type) and issubclass(cls, Adapter)):
                raise TypeError(f"{path} is not an Adapter subclass")
            adapter = cls()
            _instances[kind] = adapter
    return adapter


__all__ = ["REGISTRY", "get_adapter"]
