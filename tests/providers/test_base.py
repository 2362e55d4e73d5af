from __future__ import annotations

import email.utils
import time

import pytest

from routing.providers.base import (
    ProviderError,
    ProviderTarget,
    Usage,
    classify_status,
    iter_sse,
    parse_retry_after,
)

pytestmark = pytest.mark.anyio


def test_retry_after_accepts_seconds_dates_and_milliseconds() -> None:
    in_30s = email.utils.formatdate(time.time() + 30, usegmt=True)

    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "2"}) == 0.25
    assert 28 <= (parse_retry_after({"retry-after": in_30s}) or 0) <= 30
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (408, "server", True),
        (409, "server", True),
        (502, "server", True),
        (422, "bad_request", False),
    ],
)
def test_statuses_map_to_kinds(status: int, kind: str, retryable: bool) -> None:
    error = classify_status(status, "x", headers={"retry-after": "3"})

    assert (error.kind, error.retryable) == (kind, retryable)
    assert error.retry_after == (3.0 if retryable else None)


def test_an_unknown_error_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        ProviderError("x", kind="oops", retryable=False)


def test_usage_totals_and_openai_shape() -> None:
    usage = Usage(prompt_tokens=10, completion_tokens=5, cached_tokens=4)

    assert usage.total_tokens == 15
    assert usage.as_openai() == {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 4},
    }


def test_a_target_never_shows_its_key() -> None:
    target = ProviderTarget(base_url="http://x", api_key="sk-very-secret", upstream_model="m")

    assert "sk-very-secret" not in repr(target)


async def test_sse_events_follow_the_field_rules() -> None:
    async def lines():  # type: ignore[no-untyped-def,unused-ignore]
        for line in [": keep-alive", "event: a", "data: 1", "data: 2", "", "data:3", ""]:
            yield line

    assert [e async for e in iter_sse(lines())] == [("a", "1\n2"), (None, "3")]
