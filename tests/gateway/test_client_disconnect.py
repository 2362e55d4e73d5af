"""A client that goes away: the gateway drops the upstream call too and records the request.

The upstream here is a fake OpenAI that sends part of its answer (or nothing) and then holds
the connection open until the peer closes it, noting that it did: it only sees the close if
the gateway really dropped the upstream connection.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from routing.engine import classify
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import Exchange
from tests.gateway.conftest import add_model, add_provider

HOLD_SECONDS = 5.0  # how long the fake holds a connection the gateway does not close


class HangingOpenAI(FakeOpenAI):
    """Model "hang-mid-stream": streams "fake reply: " then hangs; "hang-first-byte": hangs
    before the status line. Either way ``closed`` is set when the gateway hangs up."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = threading.Event()

    def reset(self) -> None:
        super().reset()
        self.closed.clear()

    def _wait_for_peer_close(self, ex: Exchange) -> None:
        if self.wait_for_peer_close(ex, HOLD_SECONDS):
            self.closed.set()

    def _handle(self, ex: Exchange) -> None:
        if (ex.json or {}).get("model") == "hang-first-byte":
            with self._lock:
                self.calls.append(None)  # type: ignore[arg-type]
            self._wait_for_peer_close(ex)
            return
        super()._handle(ex)

    def _send_stream(self, ex: Exchange, events: list[bytes], scenario: str) -> None:
        ex.start_stream(self.stream_content_type)
        for event in events[:3]:  # role chunk, "fake ", "reply: "
            ex.write(event)
        self._wait_for_peer_close(ex)


@pytest.fixture(scope="module")
def hanging() -> Iterator[HangingOpenAI]:
    server = HangingOpenAI()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def hang(gw, hanging: HangingOpenAI) -> HangingOpenAI:
    hanging.reset()
    provider = add_provider("hangai", "openai", hanging.base_url)
    add_model(provider, "hang-mid-stream")
    add_model(provider, "hang-first-byte")
    return hanging


def test_a_client_that_disconnects_mid_stream_closes_the_upstream_connection(gw, hang):
    body = {
        "model": "hang-mid-stream",
        "stream": True,
        "messages": [{"role": "user", "content": "one two three"}],
    }
    text = ""
    with (
        httpx.Client(timeout=5) as client,
        client.stream(
            "POST",
            f"{gw.url}/v1/chat/completions",
            json=body,
            headers={"authorization": f"Bearer {gw.plaintext}"},
        ) as resp,
    ):
        request_id = resp.headers["x-aura-request-id"]
        for line in resp.iter_lines():
            if line.startswith("data: "):
                for choice in json.loads(line[6:])["choices"]:
                    text += choice["delta"].get("content") or ""
            if text == "fake reply: ":
                break  # hang up mid-answer

    assert hang.closed.wait(3), "the gateway kept the upstream connection open"
    [row] = gw.usage(1)
    assert row.request_id == request_id
    assert row.status == "cancelled" and row.error_code == "client_disconnected"
    assert row.stream and row.cost_estimated
    # Charged for what was delivered: "fake reply: " = 2 words + the colon = 3 (local count);
    # prompt by local count: 3 priming + 4 message + 3 words = 10.
    assert (row.prompt_tokens, row.completion_tokens) == (10, 3)
    assert row.cost_usd == (Decimal(10) * 2 + Decimal(3) * 8) / Decimal(1_000_000)
    assert classify.estimate_tokens("fake reply: ") == 3


def test_a_client_that_disconnects_before_the_first_byte_closes_the_upstream_connection(gw, hang):
    with (
        httpx.Client(timeout=httpx.Timeout(5, read=0.3)) as client,
        pytest.raises(httpx.ReadTimeout),
    ):
        client.post(
            f"{gw.url}/v1/chat/completions",
            json={"model": "hang-first-byte", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {gw.plaintext}"},
        )

    assert hang.closed.wait(3), "the gateway kept the upstream connection open"
    assert len(hang.calls) == 1
    # The request reached a provider, so it is recorded (DESIGN §3.8), as cancelled.
    [row] = gw.usage(1)
    assert row.status == "cancelled" and row.error_code == "client_disconnected"
    assert row.provider == "hangai" and row.model == "hang-first-byte"
    assert not row.stream and row.http_status == 499  # client closed request
    # Charged for the prompt by local count (3 priming + 4 message + 1 word = 8), flagged.
    assert row.cost_estimated and (row.prompt_tokens, row.completion_tokens) == (8, 0)
    assert row.cost_usd == Decimal(8) * 2 / Decimal(1_000_000)
    assert row.attempts[0]["error"] == "cancelled"
