"""Structural mutations of JSON-like bodies: every node of a valid body, replaced, renamed or
extended one at a time. Pure functions over plain values (see jsonbytes for the markers)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from tests.fuzz.jsonbytes import Raw

Path = tuple[str | int, ...]

# One value of each JSON type, plus the shapes validators most often forget.
WRONG_TYPES: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    1.5,
    "",
    "x",
    [],
    {},
    [None],
    [[]],
    [{}],
    {"": None},
    {"type": []},
)
LONE_SURROGATES = ("\ud800", "x\udfffy", "\udc00\ud800", "ok \ud83d")
NON_FINITE = (Raw(b"NaN"), Raw(b"Infinity"), Raw(b"-Infinity"))
HUGE_NUMBERS = (
    Raw(b"1e400"),
    Raw(b"-1e400"),
    Raw(b"1" + b"0" * 400),
    Raw(b"-" + b"9" * 300),
    Raw(b"1e-400"),
    Raw(b"9223372036854775808"),
    Raw(b"18446744073709551616"),
    Raw(b"-9223372036854775809"),
    Raw(b"1.7976931348623157e308"),
    Raw(b"123456789012345678901234567890.5"),
)


def fmt(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<body>"


def walk(value: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every node below ``value`` (not ``value`` itself), parents before children."""
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, item in items:
        yield (*path, key), item
        yield from walk(item, (*path, key))


def get(value: Any, path: Path) -> Any:
    for part in path:
        value = value[part]
    return value


def replaced(value: Any, path: Path, new: Any) -> Any:
    """A copy of ``value`` with the node at ``path`` replaced (untouched branches shared)."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        copy: Any = dict(value)
    else:
        copy = list(value)
    copy[head] = replaced(value[head], rest, new)
    return copy


def renamed(value: Any, path: Path, new_key: Any) -> Any:
    """A copy with the key at ``path`` (a dict member) renamed, keeping its place."""
    parent_path, old = path[:-1], path[-1]
    parent = get(value, parent_path)
    renamed_parent = {(new_key if k == old else k): v for k, v in parent.items()}
    return replaced(value, parent_path, renamed_parent)


def extended(value: Any, dict_path: Path, key: Any, new: Any) -> Any:
    """A copy with ``key: new`` added to the object at ``dict_path``."""
    target = dict(get(value, dict_path))
    target[key] = new
    return replaced(value, dict_path, target)


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "raw"


def wrong_types_for(value: Any) -> list[Any]:
    """The garbage values whose JSON type differs from ``value``'s (``[]`` vs ``{}`` count as
    different shapes even when the original is an empty one)."""
    kind = json_type(value)
    return [w for w in WRONG_TYPES if json_type(w) != kind or (kind in ("array", "object"))]


def sample(rng: random.Random, values: list[Any] | tuple[Any, ...], k: int) -> list[Any]:
    values = list(values)
    return values if len(values) <= k else rng.sample(values, k)


def string_paths(value: Any) -> list[Path]:
    return [p for p, v in walk(value) if isinstance(v, str)]


def number_paths(value: Any) -> list[Path]:
    return [p for p, v in walk(value) if isinstance(v, int | float) and not isinstance(v, bool)]


def key_paths(value: Any) -> list[Path]:
    """Paths whose last part is an object key (so they can be renamed)."""
    return [p for p, _ in walk(value) if isinstance(p[-1], str)]


def dict_paths(value: Any) -> list[Path]:
    return [(), *(p for p, v in walk(value) if isinstance(v, dict))]
