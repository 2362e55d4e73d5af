"""Hedged execution (strategy "hedge"): the same request goes to k models at once, the first
good answer wins, the others are cancelled, and every call that reached a provider is paid.

Fake token rules (tests/fakes/scenarios.py): prompt = 10 + words of every message text,
completion = words of "fake reply: <last user words>", cut to max_tokens. A call cancelled
before it answered is charged its prompt by AURA's local count (the provider bills the
prompt; it never said how many tokens that was), flagged estimated.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from billing.budgets import budget_counters_rebuild
from billing.models import Budget
from routing.gateway.context import cache
from routing.models import ProviderEndpoint
from tests.billing.counters import counter, recorded_spend, settled
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import Exchange
from tests.gateway.conftest import add_model, add_provider
from tests.gateway.http import http

HOLD_SECONDS = 10.0  # longer than the endpoint's first-byte timeout (2 s)
MTOK = Decimal(1_000_000)
BODY = {"model": "auto", "max_tokens": 4, "messages": [{"role": "user", "content": "a b c d e"}]}
# AURA's local prompt count of BODY: 3 (reply priming) + 3 (message) + 1 (role) + 3 for
# "a b c d e" (five one-letter words at 0.6 + 0.09 tokens each = 3.45, rounded).
LOCAL_PROMPT = 10
# The fake's count: prompt 10 + 5 words; completion "fake reply: a b c d e" cut to 4 words.
WINNER_COST = (Decimal(15) * 2 + Decimal(4) * 8) / MTOK  # $2 in / $8 out per 1M


class HoldingOpenAI(FakeOpenAI):
    """Models named "hang*": takes the request, never answers, and notes when the peer
    hangs up (``closed``) — it only sees that if the gateway really dropped the call.
    Model "after-hang" answers as "fake-ok" does, once a "hang*" request has arrived (so a
    hedge's winner answers only after its loser reached the provider)."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[str] = []
        self.closed: list[str] = []
        self.holding = threading.Event()

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.held.clear()
            self.closed.clear()
        self.holding.clear()

    def _handle(self, ex: Exchange) -> None:
        model = str((ex.json or {}).get("model") or "")
        if model == "after-hang":
            self.holding.wait(HOLD_SECONDS)
        if not model.startswith("hang"):
            super()._handle(ex)
            return
        with self._lock:
            self.held.append(model)
        self.holding.set()
        if self.wait_for_peer_close(ex, HOLD_SECONDS):
            with self._lock:
                self.closed.append(model)

    def wait_closed(self, n: int, timeout: float = HOLD_SECONDS + 5) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.closed) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return sorted(self.closed)


@pytest.fixture(scope="module")
def holding() -> Iterator[HoldingOpenAI]:
    server = HoldingOpenAI()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def hold(gw, holding: HoldingOpenAI) -> HoldingOpenAI:
    holding.reset()
    # Two providers on the one fake: a winner and a loser from different providers.
    gw.providers["holdai"] = add_provider("holdai", "openai", holding.base_url)
    gw.providers["quickai"] = add_provider("quickai", "openai", holding.base_url)
    return holding


def hedge(gw, k: int = 2) -> None:
    gw.policy(strategy="hedge", hedge_k=k, fallback_depth=0, objective="maximize_quality")


def day_budget(gw) -> Budget:
    budget = Budget.objects.create(tenant=gw.tenant, period="day", limit_usd=1, mode="block")
    cache.clear()
    return budget


def post(gw, **kw) -> httpx.Response:
    return http().post(
        f"{gw.url}/v1/chat/completions",
        json=BODY,
        headers={"Authorization": f"Bearer {gw.plaintext}"},
        timeout=kw.pop("timeout", 30),
    )


def assert_counter_is_the_records(budget: Budget, total: Decimal) -> None:
    """The live counter holds exactly what the records say, and a rebuild keeps it so."""
    live = settled(budget, total)
    assert (live.spent, live.reserved, live.live_reservations) == (total, 0, 0)
    assert recorded_spend(budget) == total
    assert budget_counters_rebuild(tenant_ids=[budget.tenant_id]) == 1
    assert counter(budget).spent == total


@pytest.mark.parametrize("with_budget", [True, False], ids=["budget", "no-budget"])
def test_the_first_answer_wins_the_loser_is_cancelled_and_both_calls_are_paid(
    gw, hold, with_budget
):
    add_model(gw.providers["quickai"], "after-hang", quality=0.9)
    add_model(gw.providers["holdai"], "hang-slow", quality=0.8, price_in=Decimal(3))
    hedge(gw)
    budget = day_budget(gw) if with_budget else None

    resp = post(gw)

    assert resp.status_code == 200, resp.text
    assert resp.headers["x-aura-provider"] == "quickai"
    assert resp.json()["choices"][0]["message"]["content"] == "fake reply: a b"
    # The slow call reached its provider once and was dropped: the fake saw the hang-up,
    # and the gateway says it cancelled it (not that it timed out or was retried).
    assert hold.held == ["hang-slow"]
    assert hold.wait_closed(1) == ["hang-slow"]
    loser_cost = Decimal(LOCAL_PROMPT) * 3 / MTOK
    total = WINNER_COST + loser_cost
    assert Decimal(resp.headers["x-aura-cost-usd"]) == total
    [row] = gw.usage(1)
    assert (row.status, row.provider, row.model) == ("ok", "quickai", "after-hang")
    assert (row.prompt_tokens, row.completion_tokens) == (15, 4)
    assert row.cost_usd == total
    assert row.cost_estimated  # the loser's part is AURA's count
    attempts = {a["model"]: a for a in row.attempts}
    assert set(attempts) == {"quickai/after-hang", "holdai/hang-slow"}
    assert attempts["quickai/after-hang"]["ok"]
    assert (attempts["holdai/hang-slow"]["ok"], attempts["holdai/hang-slow"]["error"]) == (
        False,
        "cancelled",
    )
    assert Decimal(attempts["holdai/hang-slow"]["cost_usd"]) == loser_cost
    if budget is not None:
        assert_counter_is_the_records(budget, total)


def test_a_hedged_call_that_failed_is_not_charged(gw):
    # The provider refused (500): nothing to pay, as for a failed fallback step.
    add_model(gw.providers["fakeai"], "fake-500", quality=0.9)
    add_model(gw.providers["fakeclaude"], "fake-slow-first-byte", quality=0.8)
    ProviderEndpoint.objects.filter(provider=gw.providers["fakeai"]).update(max_retries=0)
    gw.fakes["anthropic"].slow_first_byte = 0.5  # answers well after the 500
    hedge(gw)
    budget = day_budget(gw)

    resp = post(gw)

    assert resp.status_code == 200, resp.text
    assert resp.headers["x-aura-provider"] == "fakeclaude"
    assert Decimal(resp.headers["x-aura-cost-usd"]) == WINNER_COST
    [row] = gw.usage(1)
    assert row.cost_usd == WINNER_COST and not row.cost_estimated
    assert [(a["model"], a["ok"], a.get("error")) for a in row.attempts] == [
        ("fakeai/fake-500", False, "server"),
        ("fakeclaude/fake-slow-first-byte", True, None),
    ]
    assert_counter_is_the_records(budget, WINNER_COST)


def test_a_client_gone_mid_hedge_pays_the_prompt_of_every_call_that_reached_a_provider(gw, hold):
    add_model(gw.providers["holdai"], "hang-one", quality=0.9, price_in=Decimal(3))
    add_model(gw.providers["holdai"], "hang-two", quality=0.8, price_in=Decimal(5))
    hedge(gw)
    budget = day_budget(gw)

    async def send_then_hang_up() -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            request = asyncio.create_task(
                client.post(
                    f"{gw.url}/v1/chat/completions",
                    json=BODY,
                    headers={"Authorization": f"Bearer {gw.plaintext}"},
                )
            )
            deadline = time.monotonic() + 10
            while len(hold.held) < 2:  # the fake (another thread) fills it
                assert time.monotonic() < deadline and not request.done()
                await asyncio.sleep(0.01)
            request.cancel()  # the client goes away: its connection closes
            with contextlib.suppress(asyncio.CancelledError):
                await request

    asyncio.run(send_then_hang_up())

    assert hold.wait_closed(2) == ["hang-one", "hang-two"]
    total = Decimal(LOCAL_PROMPT) * (3 + 5) / MTOK
    [row] = gw.usage(1)
    assert (row.status, row.http_status) == ("cancelled", 499)
    assert row.cost_usd == total and row.cost_estimated
    assert_counter_is_the_records(budget, total)
