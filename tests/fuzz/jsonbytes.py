"""JSON written byte for byte, so a fuzz case can hold what ``json.dumps`` refuses or fixes.

``dumps`` writes plain Python values the way ``json.dumps`` does (ASCII only, so a lone
surrogate in a ``str`` becomes its ``\\udXXX`` escape), plus two markers:

* ``Raw(b"...")`` is spliced in verbatim: ``NaN``, invalid UTF-8, 100,000 open brackets;
* ``Pairs(((k, v), ...))`` is an object written as exactly these pairs, in order, so keys
  may repeat, be empty or be ``Raw`` bytes.

Markers nest inside ordinary dicts and lists, so a mutation can replace any one node of a
valid body and leave the rest as it was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Raw:
    data: bytes

    def __repr__(self) -> str:
        shown = self.data if len(self.data) <= 40 else self.data[:30] + b"..."
        return f"Raw({shown!r}, {len(self.data)} bytes)"


@dataclass(frozen=True)
class Pairs:
    items: tuple[tuple[Any, Any], ...]


def dumps(value: Any) -> bytes:
    out: list[bytes] = []
    _write(value, out)
    return b"".join(out)


def _write(value: Any, out: list[bytes]) -> None:
    if isinstance(value, Raw):
        out.append(value.data)
    elif isinstance(value, Pairs | dict):
        pairs = value.items if isinstance(value, Pairs) else tuple(value.items())
        out.append(b"{")
        for i, (key, item) in enumerate(pairs):
            if i:
                out.append(b",")
            _write(key if isinstance(key, Raw) else str(key), out)
            out.append(b":")
            _write(item, out)
        out.append(b"}")
    elif isinstance(value, list | tuple):
        out.append(b"[")
        for i, item in enumerate(value):
            if i:
                out.append(b",")
            _write(item, out)
        out.append(b"]")
    else:  # str, int, float (nan -> NaN), bool, None
        out.append(json.dumps(value).encode())


def nested(depth: int, *, kind: str = "array", leaf: bytes = b"1") -> Raw:
    """``depth`` levels of arrays (``[[[1]]]``) or objects (``{"a":{"a":1}}``)."""
    if kind == "array":
        return Raw(b"[" * depth + leaf + b"]" * depth)
    return Raw(b'{"a":' * depth + leaf + b"}" * depth)
