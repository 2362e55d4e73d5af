"""Request-body parsers of the management API: bad bodies are 4xx, never a 500.

DRF's own JSON parser lets four kinds of input through to a 500: a body nested deeper
than Python's recursion limit (``RecursionError`` in the decoder), one nested just below it
(it fails later, wherever the data is walked recursively), a lone UTF-16 surrogate
(``"\\ud800"``), which decodes to a ``str`` that cannot be encoded again (rendering a
response, saving a row), and a NUL (``"\\u0000"``), which Postgres refuses in text and
jsonb. ``JSONParser`` refuses all four with a 400 naming the field.

The checks cost nothing for ordinary bodies: nesting is measured only when the body holds
more brackets than ``MAX_DEPTH``, surrogates are looked for only when the raw bytes contain
a ``\\uD8..\\uDF`` escape (the only way one can arrive: raw surrogate bytes are invalid
UTF-8 and fail decoding already).

Bodies over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` raise Django's ``RequestDataTooBig``, which
``aura.errors`` answers with 413; ``read_limited`` applies the same limit to parsers that
read the raw stream (DRF hands JSON and form parsers a size-checked copy, others not).
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from aura.errors import DomainError
from aura.text import (
    find_unstorable,
    finite_float,
    has_nul_escape,
    has_surrogate_escape,
    refuse_constant,
)

MAX_DEPTH = 64


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


_MESSAGES = {
    "surrogate": "{where} contains a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff "
    "escape), which is not valid text.",
    "nul": "{where} contains a NUL character (\\u0000), which cannot be stored.",
    "depth": "{what} is nested deeper than {depth} levels.",
}


def check_tree(
    data: Any,
    *,
    max_depth: int = MAX_DEPTH,
    surrogates: bool = True,
    nul: bool = True,
    what: str = "The JSON body",
) -> None:
    """Refuse (400 naming the field) ``data`` nested deeper than ``max_depth`` or holding a
    lone surrogate (``surrogates``) or a NUL (``nul``) in a key or string."""
    found = find_unstorable(data, max_depth=max_depth, surrogates=surrogates, nul=nul)
    if found is not None:
        problem, where = found
        message = _MESSAGES[problem].format(where=where or "body", what=what, depth=max_depth)
        raise InvalidBody(message, param=where or None)


def check_raw_json(raw: bytes, data: Any) -> None:
    """``check_tree`` on parsed JSON, skipped when ``raw`` shows it cannot fail."""
    deep = raw.count(b"[") + raw.count(b"{") > MAX_DEPTH
    surrogates = has_surrogate_escape(raw)
    nul = has_nul_escape(raw)
    if deep or surrogates or nul:
        check_tree(data, surrogates=surrogates, nul=nul)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, strict about what JSON is (UTF-8 only, finite numbers: no NaN,
    Infinity or ``1e400``), plus the depth, surrogate and NUL checks (project default)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = read_limited(stream)
        try:
            data = json.loads(
                raw.decode("utf-8"), parse_constant=refuse_constant, parse_float=finite_float
            )
        except RecursionError:
            raise InvalidBody(f"The JSON body is nested deeper than {MAX_DEPTH} levels.") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        check_raw_json(raw, data)
        return data
