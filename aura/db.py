"""Database use from async code (the gateway's cold paths)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import connections

P = ParamSpec("P")
R = TypeVar("R")


def releasing_connection(fn: Callable[P, R]) -> Callable[P, R]:
    """Return the thread's pooled connection after ``fn``.

    Code run through sync_to_async from an ASGI app that is not a Django view gets no
    request_finished signal, so without this its connection would stay checked out by the
    executor thread for the life of the process.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        finally:
            connections["default"].close()

    return wrapper
