"""A provider that bills beyond max_tokens cannot push a block budget over its limit.

The fake's "fake-overbill" scenario ignores max_tokens: asked for 8 tokens it answers (and
bills) all 66 words. Streams are cut where the reservation ends; plain calls reserve the
overrun the model was seen to bill, from the first time it was seen, in every worker.
"""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal

import httpx

from aura.redis import sync_client
from billing.models import Budget
from routing.gateway.context import cache
from routing.gateway.guard import OVERRUN_KEY, overruns, stream_output_cap
from tests.gateway.conftest import add_model

WORDS = " ".join(f"w{i}" for i in range(64))  # the answer: "fake reply: w0 ... w63"
OUT_PRICE = Decimal(8)  # per 1M output tokens; input is free
PER_TOKEN = OUT_PRICE / Decimal(1_000_000)


def _body(stream: bool) -> dict:
    return {
        "model": "fake-overbill",
        "max_tokens": 8,
        "stream": stream,
        "messages": [{"role": "user", "content": WORDS}],
    }


async def _fire(gw, n: int, *, stream: bool) -> list[tuple[int, str]]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def one() -> tuple[int, str]:
            resp = await client.post(
                f"{gw.url}/v1/chat/completions",
                json=_body(stream),
                headers={"Authorization": f"Bearer {gw.plaintext}"},
            )
            return resp.status_code, resp.text

        return await asyncio.gather(*(one() for _ in range(n)))


def _setup(gw, limit: Decimal) -> Budget:
    add_model(gw.providers["fakeai"], "fake-overbill", price_in=Decimal(0), price_out=OUT_PRICE)
    budget = Budget.objects.create(tenant=gw.tenant, period="day", limit_usd=limit, mode="block")
    cache.clear()
    return budget


def test_a_stream_is_cut_where_its_reservation_ends_and_never_overshoots(gw):
    cap = stream_output_cap(8)
    budget = _setup(gw, cap * PER_TOKEN * 50)  # fits 50 streams at their cap
    answers = asyncio.run(_fire(gw, 200, stream=True))
    served = [text for status, text in answers if status == 200]
    assert len(served) >= 50  # each charged at most its reservation; some less
    for text in served:
        events = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        assert chunks[-1]["choices"][0]["finish_reason"] == "length"
        words = "".join(
            c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]
        )
        assert len(words.split()) <= cap  # nowhere near the 66 the provider would send
    records = gw.usage(200)
    rows = [r for r in records if r.status == "ok"]
    assert len(rows) == len(served), {(r.status, r.http_status, r.error_code) for r in records}
    assert all(r.cost_estimated and r.error_code == "max_tokens_enforced" for r in rows)
    assert sum(r.cost_usd for r in rows) <= budget.limit_usd


def test_a_plain_call_reserves_the_overrun_its_model_was_seen_to_bill(gw):
    budget = _setup(gw, 8 * PER_TOKEN * 50)  # what 50 calls would cost if max_tokens held
    first = asyncio.run(_fire(gw, 1, stream=False))
    assert first[0][0] == 200
    assert json.loads(first[0][1])["usage"]["completion_tokens"] == 66
    # Learned, and shared with every worker through Redis.
    assert overruns.margin("fakeai/fake-overbill") == 66 / 8
    deadline = time.monotonic() + 5
    while sync_client().hget(OVERRUN_KEY, "fakeai/fake-overbill") is None:
        assert time.monotonic() < deadline, "the margin was not shared"
        time.sleep(0.02)
    assert float(sync_client().hget(OVERRUN_KEY, "fakeai/fake-overbill")) == 66 / 8

    answers = asyncio.run(_fire(gw, 200, stream=False))
    statuses = [status for status, _ in answers]
    assert set(statuses) == {200, 402}
    spent = sum((r.cost_usd for r in gw.usage(201) if r.status == "ok"), Decimal(0))
    assert spent <= budget.limit_usd
    # 66 tokens each: the 400 tokens' worth fit six calls (the first one included).
    assert statuses.count(200) == int(budget.limit_usd / (66 * PER_TOKEN)) - 1


def test_another_worker_learns_the_overrun_from_redis(gw):
    sync_client().hset(OVERRUN_KEY, "fakeai/fake-overbill", "8.25")  # seen by another worker
    overruns.clear()
    budget = _setup(gw, 8 * PER_TOKEN * 50)
    add_model(gw.providers["fakeai"], "fake-ok", price_in=Decimal(0), price_out=OUT_PRICE)
    # Any budgeted request refreshes the margins in the background, off its own path.
    warm = gw.client().chat.completions.create(
        model="fake-ok", max_tokens=1, messages=[{"role": "user", "content": "hi"}]
    )
    assert warm.usage.completion_tokens == 1
    deadline = time.monotonic() + 5
    while overruns.margin("fakeai/fake-overbill") == 1.0:
        assert time.monotonic() < deadline, "the shared margin was not read"
        time.sleep(0.02)
    answers = asyncio.run(_fire(gw, 50, stream=False))
    left = budget.limit_usd - PER_TOKEN
    assert [s for s, _ in answers].count(200) == int(left / (66 * PER_TOKEN))
    assert sum(r.cost_usd for r in gw.usage(51) if r.status == "ok") <= budget.limit_usd
