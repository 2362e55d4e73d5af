"""Load shedding through the live gateway: an endpoint with max_in_flight=1 in front of a
fake upstream that answers only when the test lets a call through, so which request holds
the slot, which ones wait and in what order they reach the upstream is decided by the
test, not by timing.

The gateway runs in this process (a thread): the tests read its limiter (``shedder``)
directly and wait for its queue to change through the limiter's listeners.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import pytest

from aura.redis import sync_client
from billing.budgets import BudgetRule, counter_key
from billing.models import Budget
from billing.periods import period_bounds
from routing.gateway.context import cache
from routing.gateway.shedding import shedder
from routing.models import ProviderEndpoint
from tenants.services import api_key_create
from tests.fakes.openai import FakeOpenAI, openai_text
from tests.fakes.server import Exchange
from tests.gateway.conftest import Env, add_model, add_provider

HOLD = 10.0  # the longest a gated call waits to be let through (a failing test must end)
WAIT = 5.0  # the longest a test waits for the gateway to reach a state


class GatedOpenAI(FakeOpenAI):
    """Model "gated": a call waits until the test lets one through (a stream: after its
    first two events). ``served`` lists the last user message of every gated call, in
    the order the calls reached this upstream."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Semaphore(0)
        self.arrived = threading.Condition()
        self.served: list[str] = []

    def reset(self) -> None:
        super().reset()
        self.gate = threading.Semaphore(0)
        with self.arrived:
            self.served.clear()

    def _handle(self, ex: Exchange) -> None:
        body = ex.json if isinstance(ex.json, dict) else {}
        if body.get("model") == "gated":
            with self.arrived:
                self.served.append(openai_text(body["messages"][-1]["content"]))
                self.arrived.notify_all()
            if not body.get("stream") and not self.gate.acquire(timeout=HOLD):
                ex.drop()
                return
        super()._handle(ex)

    def _send_stream(self, ex: Exchange, events: list[bytes], scenario: str) -> None:
        ex.start_stream(self.stream_content_type)
        for event in events[:2]:  # the role chunk and "fake "
            ex.write(event)
        if not self.gate.acquire(timeout=HOLD):
            ex.drop()
            return
        for event in events[2:]:
            ex.write(event)
        ex.end()


@pytest.fixture(scope="module")
def gated_server() -> Iterator[GatedOpenAI]:
    server = GatedOpenAI()
    server.start()
    yield server
    server.stop()


@dataclass
class Overload:
    gw: Env
    fake: GatedOpenAI
    row: ProviderEndpoint
    pool: ThreadPoolExecutor
    changed: threading.Condition = field(default_factory=threading.Condition)
    queue_events: int = 0

    @property
    def endpoint(self) -> str:
        """The limiter's name for the endpoint (its circuit breaker's)."""
        return f"ep{self.row.pk}"

    def on_change(self, name: str) -> None:  # the gateway's thread
        if name == self.endpoint:
            with self.changed:
                self.queue_events += 1
                self.changed.notify_all()

    def wait_queued(self, n: int) -> None:
        with self.changed:
            ok = self.changed.wait_for(lambda: shedder.queued(self.endpoint) == n, WAIT)
        assert ok, f"expected {n} queued, found {shedder.queued(self.endpoint)}"

    def wait_arrived(self, n: int) -> None:
        with self.fake.arrived:
            ok = self.fake.arrived.wait_for(lambda: len(self.fake.served) >= n, WAIT)
        assert ok, f"expected {n} calls upstream, got {self.fake.served}"

    def let_through(self, n: int = 1) -> None:
        for _ in range(n):
            self.fake.gate.release()

    def post(
        self,
        text: str,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        model: str = "gated",
        path: str = "/v1/chat/completions",
    ) -> httpx.Response:
        body = {"model": model, "messages": [{"role": "user", "content": text}]}
        return httpx.post(
            f"{self.gw.url}{path}",
            json=body,
            headers={"authorization": f"Bearer {key or self.gw.plaintext}", **(headers or {})},
            timeout=30,
        )

    def submit(self, text: str, **kw: Any) -> Future[httpx.Response]:
        return self.pool.submit(self.post, text, **kw)

    def submit_stream(self, text: str) -> Future[str]:
        def read() -> str:
            body = {
                "model": "gated",
                "stream": True,
                "messages": [{"role": "user", "content": text}],
            }
            got = ""
            with httpx.stream(
                "POST",
                f"{self.gw.url}/v1/chat/completions",
                json=body,
                headers={"authorization": f"Bearer {self.gw.plaintext}"},
                timeout=30,
            ) as resp:
                assert resp.status_code == 200
                for line in resp.iter_lines():
                    if line.startswith("data: {"):
                        for choice in json.loads(line[6:])["choices"]:
                            got += choice["delta"].get("content") or ""
            return got

        return self.pool.submit(read)


@pytest.fixture
def overload(gw: Env, gated_server: GatedOpenAI) -> Iterator[Overload]:
    gated_server.reset()
    provider = add_provider("gatedai", "openai", gated_server.base_url)
    add_model(provider, "gated")
    add_model(provider, "fake-500")
    add_model(provider, "fake-embed", kind="embeddings", caps=["embeddings"])
    row = ProviderEndpoint.objects.get(provider=provider)
    row.max_in_flight = 1
    row.save(update_fields=["max_in_flight"])
    cache.clear()
    with ThreadPoolExecutor(max_workers=8) as pool:
        o = Overload(gw, gated_server, row, pool)
        shedder.listeners.append(o.on_change)
        try:
            yield o
        finally:
            shedder.listeners.remove(o.on_change)
            o.let_through(50)  # whatever a failed test left waiting upstream
    # Every way a request ended released its slot and left the queue.
    assert shedder.in_flight(o.endpoint) == 0
    assert shedder.queued(o.endpoint) == 0


def key_with(gw: Env, name: str, priority: str) -> str:
    return api_key_create(tenant=gw.tenant, name=name, priority=priority)[1]


def test_under_overload_high_priority_is_served_first_then_normal_then_low(overload):
    o = overload
    interactive = key_with(o.gw, "interactive", "high")
    batch = key_with(o.gw, "batch", "low")
    first = o.submit("first")
    o.wait_arrived(1)  # it holds the only slot until let through
    waiting = []
    for n, (text, kw) in enumerate(
        [
            ("low key asking for high", {"key": batch, "headers": {"x-aura-priority": "high"}}),
            ("normal key lowered to low", {"headers": {"x-aura-priority": "low"}}),
            ("normal key", {}),
            ("high key", {"key": interactive}),
        ],
        start=1,
    ):
        waiting.append(o.submit(text, **kw))
        o.wait_queued(n)  # queued in this order

    o.let_through(5)

    assert [f.result().status_code for f in [first, *waiting]] == [200] * 5
    assert o.fake.served == [
        "first",
        "high key",
        "normal key",
        # Low, first come first served: the header cannot raise a key above its priority.
        "low key asking for high",
        "normal key lowered to low",
    ]
    # The priority header is AURA's: the provider never sees it.
    assert o.fake.calls and all("x-aura-priority" not in c.headers for c in o.fake.calls)
    rows = o.gw.usage(5)
    assert [r.status for r in rows] == ["ok"] * 5


def _budget_counter(gw: Env, budget: Budget) -> dict[str, int]:
    from django.utils import timezone

    rule = BudgetRule(budget.id, None, budget.period, budget.limit_usd, budget.mode, (50,))
    start, _ = period_bounds(budget.period, timezone.now(), gw.tenant.timezone)
    raw = sync_client().hgetall(counter_key(rule, start))
    return {"spent": int(raw.get(b"spent", 0)), "reserved": int(raw.get(b"reserved", 0))}


def test_a_request_that_waits_past_the_queue_timeout_gets_a_503_with_retry_after(
    overload, settings
):
    o = overload
    settings.SHED_QUEUE_TIMEOUT = 0.2
    budget = Budget.objects.create(
        tenant=o.gw.tenant, period="day", limit_usd=Decimal(1), mode="block"
    )
    cache.clear()
    first = o.submit("first")
    o.wait_arrived(1)
    held_by_first = _budget_counter(o.gw, budget)["reserved"]
    assert held_by_first > 0

    resp = o.post("second")

    assert resp.status_code == 503
    err = resp.json()["error"]
    assert (err["type"], err["code"]) == ("server_error", "server_overloaded")
    assert "its limit is 1 at once" in err["message"]
    assert int(resp.headers["retry-after"]) >= 1
    # It waited before reserving: it never held any of the budget.
    assert _budget_counter(o.gw, budget)["reserved"] == held_by_first
    [refused] = o.gw.usage(1)
    assert refused.request_id == resp.headers["x-aura-request-id"]
    assert (refused.status, refused.http_status) == ("error", 503)
    assert refused.error_code == "server_overloaded" and refused.cost_usd == 0
    assert (refused.provider, refused.model) == ("gatedai", "gated")
    assert [(a["model"], a["error"]) for a in refused.attempts] == [("gatedai/gated", "overloaded")]

    o.let_through()
    assert first.result().status_code == 200
    served = [r for r in o.gw.usage(2) if r.status == "ok"]
    assert len(served) == 1 and o.fake.served == ["first"]
    counter = _budget_counter(o.gw, budget)
    assert counter["reserved"] == 0
    assert counter["spent"] == int(served[0].cost_usd * 10**9)


def test_a_full_queue_refuses_at_once_with_503_queue_full(overload, settings):
    o = overload
    settings.SHED_QUEUE_SIZE = 1  # SHED_QUEUE_TIMEOUT stays 10 s: a refusal is not a wait
    first = o.submit("first")
    o.wait_arrived(1)
    second = o.submit("second")
    o.wait_queued(1)

    resp = o.post("third")

    assert resp.status_code == 503
    assert resp.json()["error"]["code"] == "queue_full"
    assert int(resp.headers["retry-after"]) >= 1
    [refused] = o.gw.usage(1)
    assert (refused.http_status, refused.error_code) == (503, "queue_full")
    o.let_through(2)
    assert first.result().status_code == second.result().status_code == 200
    assert o.fake.served == ["first", "second"]
    assert len(o.gw.usage(3)) == 3


def test_a_full_endpoint_is_skipped_for_a_fallback_endpoint_with_room(overload):
    o = overload
    add_model(o.gw.providers["fakeclaude"], "gated")
    o.gw.policy(aliases={"chain": ["gatedai/gated", "fakeclaude/gated"]})
    first = o.submit("first", model="chain")
    o.wait_arrived(1)

    resp = o.post("second", model="chain")

    assert resp.status_code == 200
    assert resp.headers["x-aura-provider"] == "fakeclaude"
    assert resp.headers["x-aura-fallbacks"] == "1"
    assert o.queue_events == 0  # it did not queue for the full one
    [row] = o.gw.usage(1)
    assert [(a["model"], a["ok"], a.get("error")) for a in row.attempts] == [
        ("gatedai/gated", False, "overloaded"),
        ("fakeclaude/gated", True, None),
    ]
    o.let_through()
    assert first.result().headers["x-aura-provider"] == "gatedai"


def test_a_client_that_gives_up_while_queued_leaves_the_queue_and_is_recorded(overload):
    o = overload
    first = o.submit("first")
    o.wait_arrived(1)
    body = json.dumps({"model": "gated", "messages": [{"role": "user", "content": "gone"}]})
    sock = socket.create_connection(("127.0.0.1", int(o.gw.url.rsplit(":", 1)[1])))
    sock.sendall(
        (
            "POST /v1/chat/completions HTTP/1.1\r\nhost: aura\r\n"
            f"authorization: Bearer {o.gw.plaintext}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n{body}"
        ).encode()
    )
    o.wait_queued(1)
    sock.close()
    o.wait_queued(0)  # it left the queue as soon as it hung up
    third = o.submit("third")
    o.wait_queued(1)

    o.let_through(2)

    assert first.result().status_code == third.result().status_code == 200
    assert o.fake.served == ["first", "third"]  # the slot never went to the one that left
    rows = o.gw.usage(3)
    [gone] = [r for r in rows if r.status == "cancelled"]
    assert (gone.http_status, gone.error_code) == (499, "client_disconnected")
    assert gone.cost_usd == 0 and not gone.cost_estimated  # it reached no provider


def test_a_stream_holds_its_slot_until_it_ends_and_errors_and_hang_ups_release_theirs(overload):
    o = overload
    streamed = o.submit_stream("streamed")
    o.wait_arrived(1)
    after = o.submit("after the stream")
    o.wait_queued(1)  # the open stream still holds the slot

    o.let_through()  # the stream ends, and hands its slot on
    o.wait_arrived(2)
    o.let_through()

    assert streamed.result() == "fake reply: streamed"
    assert after.result().status_code == 200

    failed = o.post("boom", model="fake-500")
    assert failed.status_code == 502
    assert shedder.in_flight(o.endpoint) == 0  # released before the error was answered

    with (
        httpx.Client(timeout=10) as client,
        client.stream(
            "POST",
            f"{o.gw.url}/v1/chat/completions",
            json={"model": "gated", "stream": True, "messages": [{"role": "user", "content": "x"}]},
            headers={"authorization": f"Bearer {o.gw.plaintext}"},
        ) as resp,
    ):
        for line in resp.iter_lines():
            if line.startswith("data: "):
                break  # hang up mid-stream

    rows = o.gw.usage(4)  # the hang-up is recorded after its slot was released
    assert sorted(r.status for r in rows) == ["cancelled", "error", "ok", "ok"]
    assert shedder.in_flight(o.endpoint) == 0


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/embeddings"])
def test_an_invalid_priority_header_is_a_400_naming_it(overload, path):
    o = overload
    model = "gated" if path.endswith("completions") else "fake-embed"
    if path.endswith("embeddings"):
        resp = httpx.post(
            f"{o.gw.url}{path}",
            json={"model": model, "input": "hello"},
            headers={"authorization": f"Bearer {o.gw.plaintext}", "x-aura-priority": "urgent"},
        )
    else:
        resp = o.post("hello", headers={"x-aura-priority": "urgent"})

    assert resp.status_code == 400
    err = resp.json()["error"]
    assert (err["param"], err["code"]) == ("x-aura-priority", "invalid_priority")
    assert "x-aura-priority must be one of high, normal, low" in err["message"]
    [row] = o.gw.usage(1)
    assert (row.http_status, row.error_code) == (400, "invalid_priority")
    assert o.fake.calls == []
