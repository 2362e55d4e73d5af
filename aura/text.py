"""Text that crosses a boundary: what Postgres can store, what a client sent that no
encoder can carry.

Postgres refuses U+0000 in text and jsonb, and UTF-8 cannot encode a lone surrogate
(``"\\ud800"`` is valid JSON but not valid Unicode text). A client's JSON can contain both,
and so can an upstream's error message; neither may turn a request into a 500 or a usage
record into one the database refuses.
"""

from __future__ import annotations

import re
from typing import Any

REPLACEMENT = "\ufffd"
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def storable_text(value: str, max_length: int | None = None) -> str:
    """``value`` with NUL and lone surrogates replaced, cut to ``max_length`` characters."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = "".join(REPLACEMENT if "\ud800" <= ch <= "\udfff" else ch for ch in value)
    if "\x00" in value:
        value = value.replace("\x00", REPLACEMENT)
    if max_length is not None and len(value) > max_length:
        value = value[:max_length]
    return value


def storable_json(value: Any) -> Any:
    """A copy of a JSON-like value whose every string (keys too) is storable in jsonb."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable_text(str(k)): storable_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable_json(v) for v in value]
    return value


def has_surrogate_escape(raw: bytes) -> bool:
    """Whether JSON text may hold a surrogate (an escaped ``\\ud800``-``\\udfff``): only then
    is the parsed value worth walking for lone ones."""
    return _SURROGATE_ESCAPE.search(raw) is not None


def lone_surrogate_path(value: Any, path: str = "") -> str | None:
    """The path (``messages[0].content``) of the first string holding a lone surrogate, or
    None. Keys count as strings (their path is the object's)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "(body)"
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            name = storable_text(str(k))  # the path goes into an error message
            if name != k:
                return path or "(body)"
            child = f"{path}.{name}" if path else name
            found = lone_surrogate_path(v, child)
            if found is not None:
                return found
        return None
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = lone_surrogate_path(v, f"{path}[{i}]")
            if found is not None:
                return found
    return None
