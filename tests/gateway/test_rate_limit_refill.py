"""Rate-limit buckets refill with time, Retry-After says when, and key_tpm counts a key's
prompt and completion tokens — through the real gateway, with the clock held still.

The limiter reads the wall clock once per request (``now_ms``); time-machine moves that
clock for the gateway too (it runs in this process), so "20 seconds later" takes no time.
A bucket of N per minute holds N and refills N/60 per second.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import time_machine

from aura.redis import sync_client
from tenants.services import api_key_create
from tests.gateway.conftest import add_model
from tests.gateway.http import http

T0 = datetime(2031, 3, 12, 10, 0, 0, tzinfo=UTC)


def post(gw, key: str | None = None, content: str = "a b c d e") -> httpx.Response:
    return http().post(
        f"{gw.url}/v1/chat/completions",
        json={
            "model": "fake-ok",
            "max_tokens": 4,
            "messages": [{"role": "user", "content": content}],
        },
        headers={"Authorization": f"Bearer {key or gw.plaintext}"},
    )


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def at(clock, seconds: float) -> None:
    clock.move_to(T0 + timedelta(seconds=seconds))


def level(bucket: str, expected: float, timeout: float = 5.0) -> float | None:
    """The bucket's stored level once it is ``expected`` (completion tokens are charged
    just after the answer), or whatever it is at the deadline. time.monotonic is not
    frozen by time-machine."""
    deadline = time.monotonic() + timeout
    while True:
        raw = sync_client().hget(bucket, "t")
        value = None if raw is None else float(raw)
        if value == expected or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def test_an_rpm_bucket_refills_and_retry_after_says_when(gw, clock):
    add_model(gw.providers["fakeai"], "fake-ok")
    gw.policy(rate_limits={"rpm": 3})
    assert [post(gw).status_code for _ in range(3)] == [200, 200, 200]
    # Empty: one request refills in 60 / 3 = 20 s.
    refused = post(gw)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "20"
    assert "Retry in 20 s" in refused.json()["error"]["message"]
    # Half of it has refilled after 10 s: the other half takes 10 s more.
    at(clock, 10)
    refused = post(gw)
    assert (refused.status_code, refused.headers["retry-after"]) == (429, "10")
    at(clock, 20)
    assert post(gw).status_code == 200
    # It took the one request that had refilled: empty again, for another 20 s.
    assert post(gw).headers["retry-after"] == "20"
    # Three minutes after it emptied it would have refilled 9: it holds no more than 3.
    at(clock, 200)
    assert [post(gw).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert len(gw.fakes["openai"].calls) == 3 + 1 + 3  # refused requests never went upstream
    rows = gw.usage(11)
    assert [r.http_status for r in rows].count(429) == 4


def test_key_tpm_counts_a_keys_prompt_and_completion_tokens_and_refills(gw, clock):
    add_model(gw.providers["fakeai"], "fake-ok")
    gw.policy(rate_limits={"key_tpm": 60})
    other_key, other = api_key_create(tenant=gw.tenant, name="other")
    bucket = f"aura:rl:k:{gw.key.pk}:tpm"
    # AURA's local count of "a b c d e" is 10 prompt tokens (3 reply priming + 3 message +
    # 1 role + 3 for five one-letter words); the fake bills 4 completion tokens
    # (max_tokens), charged after the answer: 60 - 10 - 4 = 46 left.
    assert post(gw).status_code == 200
    assert level(bucket, 46) == 46
    # 60 one-letter words: 3 + 4 + round(60 * 0.69) = 48 tokens, 2 more than are left,
    # which refill at 1 token per second.
    long_prompt = " ".join(["a"] * 60)
    refused = post(gw, content=long_prompt)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "2"
    assert "API key tpm" in refused.json()["error"]["message"]
    # Another key of the same tenant has its own bucket.
    assert post(gw, other, content=long_prompt).status_code == 200
    assert level(f"aura:rl:k:{other_key.pk}:tpm", 60 - 48 - 4) == 60 - 48 - 4
    at(clock, 2)
    assert post(gw, content=long_prompt).status_code == 200
    assert len(gw.fakes["openai"].calls) == 3
