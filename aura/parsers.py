"""Request-body parsers of the management API: bad bodies are 4xx, never a 500.

DRF's own JSON parser lets three kinds of input through to a 500: a body nested deeper
than Python's recursion limit (``RecursionError`` in the decoder), one nested just below it
(it fails later, wherever the data is walked recursively) and a lone UTF-16 surrogate
(``"\\ud800"``), which decodes to a ``str`` that cannot be encoded again (rendering a
response, saving a row). ``JSONParser`` refuses all three with a 400 naming the field.

The checks cost nothing for ordinary bodies: nesting is measured only when the body holds
more brackets than ``MAX_DEPTH``, surrogates are looked for only when the raw bytes contain
a ``\\uD8..\\uDF`` escape (the only way one can arrive: raw surrogate bytes are invalid
UTF-8 and fail decoding already).

Bodies over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` raise Django's ``RequestDataTooBig``, which
``aura.errors`` answers with 413; ``read_limited`` applies the same limit to parsers that
read the raw stream (DRF hands JSON and form parsers a size-checked copy, others not).
"""

from __future__ import annotations

import io
import re
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import parsers

from aura.errors import DomainError

MAX_DEPTH = 64
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class InvalidBody(DomainError):
    code = "parse_error"


def read_limited(stream: Any) -> bytes:
    """The whole body, refusing (413) one larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE``."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if stream is None:
        return b""
    data: bytes = stream.read() if limit is None else stream.read(limit + 1)
    if limit is not None and len(data) > limit:
        raise RequestDataTooBig("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE.")
    return data


def _printable(key: str) -> str:
    # A key may itself hold a lone surrogate; the path must still be renderable.
    return key.encode("utf-8", "backslashreplace").decode("utf-8")


def _path(parts: tuple[str | int, ...]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{_printable(part)}" if out else _printable(part)
    return out


def check_tree(
    data: Any, *, max_depth: int = MAX_DEPTH, surrogates: bool = True, what: str = "The JSON body"
) -> None:
    """Refuse ``data`` nested deeper than ``max_depth`` or holding a lone surrogate in a
    key or string (when ``surrogates``). Iterative: it must not recurse itself."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if surrogates and _LONE_SURROGATE.search(value):
                where = _path(path) or "body"
                raise InvalidBody(
                    f"{where} contains a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff "
                    "escape), which is not valid text.",
                    param=_path(path) or None,
                )
            continue
        if not isinstance(value, dict | list):
            continue
        if len(path) >= max_depth:
            raise InvalidBody(
                f"{what} is nested deeper than {max_depth} levels.", param=_path(path) or None
            )
        if isinstance(value, dict):
            for key, item in value.items():
                if surrogates and _LONE_SURROGATE.search(key):
                    raise InvalidBody(
                        f"A key of {_path(path) or 'the body'} contains a lone UTF-16 "
                        "surrogate, which is not valid text.",
                        param=_path((*path, key)),
                    )
                stack.append((item, (*path, key)))
        else:
            stack.extend((item, (*path, i)) for i, item in enumerate(value))


def check_raw_json(raw: bytes, data: Any) -> None:
    """``check_tree`` on parsed JSON, skipped when ``raw`` shows it cannot fail."""
    deep = raw.count(b"[") + raw.count(b"{") > MAX_DEPTH
    surrogates = _SURROGATE_ESCAPE.search(raw) is not None
    if deep or surrogates:
        check_tree(data, surrogates=surrogates)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, plus the depth and surrogate checks (project default)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = read_limited(stream)
        try:
            data = super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:
            raise InvalidBody(f"The JSON body is nested deeper than {MAX_DEPTH} levels.") from None
        check_raw_json(raw, data)
        return data
