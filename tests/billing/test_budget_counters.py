"""The reservation scripts on a real Redis: amounts that Lua would mangle stay exact."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import redis.asyncio as aioredis
from django.conf import settings

from aura.redis import sync_client
from billing.budgets import BudgetExceeded, BudgetRule, Budgets


def _rule(limit: str, rule_id: int = 9001) -> BudgetRule:
    return BudgetRule(rule_id, None, "day", Decimal(limit), "block", (50, 100))


def _counter(budgets: Budgets) -> dict[Any, Any]:
    return dict(sync_client().hgetall(budgets.counters[0].key))


def _run(body: Any) -> Any:
    async def main() -> Any:
        client = aioredis.Redis.from_url(settings.REDIS_URL)
        try:
            return await body(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


@pytest.fixture(autouse=True)
def _clean_redis() -> Any:
    sync_client().flushdb()
    yield
    sync_client().flushdb()


def test_a_zero_priced_request_reserves_and_settles_without_error() -> None:
    async def body(client: Any) -> dict[bytes, bytes]:
        budgets = Budgets([_rule("1")], tz_name="UTC", redis=client, now=datetime.now(UTC))
        token = await budgets.reserve(0.0, int(time.time() * 1000))
        assert token is not None
        settled = await budgets.settle(token, Decimal(0))
        assert [spent for _, spent in settled] == [0]  # [] would mean the script failed
        released = await budgets.reserve(0.0, int(time.time() * 1000))
        await budgets.release(released)
        return _counter(budgets) | {
            b"live": str(sync_client().zcard(budgets.counters[0].key + ":z")).encode()
        }

    counter = _run(body)
    assert counter[b"reserved"] == b"0"
    assert counter[b"spent"] == b"0"
    assert counter[b"live"] == b"0"


def test_an_expired_zero_reservation_is_swept_without_error() -> None:
    async def body(client: Any) -> dict[bytes, bytes]:
        budgets = Budgets([_rule("1")], tz_name="UTC", redis=client, now=datetime.now(UTC))
        now = int(time.time() * 1000)
        await budgets.reserve(0.0, now, ttl_ms=1)
        # The next reservation sweeps the expired one (amount "0") first.
        token = await budgets.reserve(0.5, now + 10)
        assert token is not None
        return _counter(budgets)

    assert _run(body)[b"reserved"] == b"500000000"


def test_amounts_beyond_lua_number_formatting_stay_exact() -> None:
    # $2,000,000.123456789 is 2e15 nano-USD: Lua would format it as 2.0000001234568e+15.
    big = Decimal("2000000.123456789")

    async def body(client: Any) -> dict[bytes, bytes]:
        budgets = Budgets([_rule("10000000")], tz_name="UTC", redis=client, now=datetime.now(UTC))
        token = await budgets.reserve(float(big), int(time.time() * 1000))
        await budgets.settle(token, big)
        return _counter(budgets)

    counter = _run(body)
    assert counter[b"spent"] == b"2000000123456789"
    assert counter[b"reserved"] == b"0"


def test_a_refusal_reports_exact_spent_and_reserved() -> None:
    async def body(client: Any) -> BudgetExceeded:
        budgets = Budgets([_rule("3000000")], tz_name="UTC", redis=client, now=datetime.now(UTC))
        now = int(time.time() * 1000)
        token = await budgets.reserve(1_000_000.5, now)
        await budgets.settle(token, Decimal("1000000.000000001"))
        await budgets.reserve(1_500_000.25, now)
        with pytest.raises(BudgetExceeded) as info:
            await budgets.reserve(600_000.0, now)
        return info.value

    refused = _run(body)
    assert refused.spent == Decimal("1000000.000000001")
    assert refused.reserved == Decimal("1500000.25")
