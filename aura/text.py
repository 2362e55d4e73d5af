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
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_INF = float("inf")


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
    is the parsed value worth walking for lone ones (raw surrogate bytes are invalid UTF-8
    and fail strict decoding already)."""
    return _SURROGATE_ESCAPE.search(raw) is not None


def has_nul_escape(raw: bytes) -> bool:
    return b"\\u0000" in raw


def printable_key(key: str) -> str:
    """A key as it can appear in an error message (lone surrogates shown escaped)."""
    return key.encode("utf-8", "backslashreplace").decode("utf-8")


def path_text(parts: tuple[str | int, ...]) -> str:
    """``("messages", 0, "content")`` -> ``messages[0].content``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{printable_key(part)}" if out else printable_key(part)
    return out


def find_unstorable(
    data: Any, *, max_depth: int | None = None, surrogates: bool = True, nul: bool = False
) -> tuple[str, str] | None:
    """The first problem in parsed JSON/YAML, as ``(problem, path)``: ``"depth"`` (nested
    deeper than ``max_depth``), ``"surrogate"`` (a lone UTF-16 surrogate in a string or key)
    or ``"nul"`` (U+0000, which Postgres cannot store). Iterative: deep input must not make
    it recurse."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if surrogates and _LONE_SURROGATE.search(value):
                return "surrogate", path_text(path)
            if nul and "\x00" in value:
                return "nul", path_text(path)
            continue
        if not isinstance(value, dict | list):
            continue
        if max_depth is not None and len(path) >= max_depth:
            return "depth", path_text(path)
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str):
                    if surrogates and _LONE_SURROGATE.search(key):
                        return "surrogate", path_text((*path, key))
                    if nul and "\x00" in key:
                        return "nul", path_text((*path, key))
                stack.append((item, (*path, key)))
        else:
            stack.extend((item, (*path, i)) for i, item in enumerate(value))
    return None


def finite_float(text: str) -> float:
    """``parse_float`` for json.loads: ``1e400`` is infinity to Python, not a number to
    JSON (and would be sent on as the invalid token ``Infinity``)."""
    value = float(text)
    if value in (_INF, -_INF):
        raise ValueError(f"the number {text[:40]} is too large")
    return value


def refuse_constant(name: str) -> Any:
    """``parse_constant`` for json.loads: NaN and Infinity are Python, not JSON."""
    raise ValueError(f"{name} is not valid JSON (numbers must be finite)")
