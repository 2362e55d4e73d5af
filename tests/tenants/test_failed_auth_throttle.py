"""Failed authentication is cheap and throttled per client address, across workers.

An unknown key prefix costs a database lookup; a flood of them from one address must not
slow legitimate clients. Past AUTH_FAILURES_PER_MINUTE failures in a minute (counted in
Redis, so every worker sees them), the address gets 429 for the rest of the minute on
anything that would need a lookup — without one. A cached valid key keeps working.
"""

from __future__ import annotations

from typing import Any

import pytest

from tenants.auth import ApiKeyResolver, AuthError, AuthThrottled, client_address, throttle
from tests.conftest import key_client

BAD = "aura-{:012x}.nosuchsecret"


@pytest.fixture
def limit(settings: Any) -> int:
    settings.AUTH_FAILURES_PER_MINUTE = 5
    return 5


def _fail(resolver: ApiKeyResolver, n: int, address: str, start: int = 0) -> None:
    for i in range(start, start + n):
        with pytest.raises(AuthError) as refused:
            resolver.resolve(BAD.format(i), address)
        assert not isinstance(refused.value, AuthThrottled)


def test_an_address_past_the_limit_is_refused_without_a_lookup(
    alice_key, limit, django_assert_num_queries
) -> None:
    resolver = ApiKeyResolver()
    _fail(resolver, limit + 1, "203.0.113.7")
    with django_assert_num_queries(0), pytest.raises(AuthThrottled) as throttled:
        resolver.resolve(BAD.format(999), "203.0.113.7")
    assert throttled.value.code == "too_many_failed_attempts"
    assert 0 < throttled.value.retry_after <= 60
    # Another address is not affected.
    with pytest.raises(AuthError) as other:
        resolver.resolve(BAD.format(1000), "198.51.100.1")
    assert not isinstance(other.value, AuthThrottled)


def test_a_cached_valid_key_from_a_throttled_address_still_works(alice_key, limit) -> None:
    key, plaintext = alice_key
    resolver = ApiKeyResolver()
    assert resolver.resolve(plaintext, "203.0.113.7").key_id == key.pk
    _fail(resolver, limit + 1, "203.0.113.7")
    assert resolver.resolve(plaintext, "203.0.113.7").key_id == key.pk


def test_failures_on_two_workers_add_up(alice_key, limit) -> None:
    # Two resolvers stand for two processes: the count lives in Redis, the verdict locally.
    first, second = ApiKeyResolver(), ApiKeyResolver()
    _fail(first, 3, "203.0.113.9")
    throttle.clear()  # the second process has no local verdict of its own
    _fail(second, 3, "203.0.113.9", start=3)  # 6 > 5: the last one crossed the limit
    with pytest.raises(AuthThrottled):
        second.resolve(BAD.format(50), "203.0.113.9")


def test_x_forwarded_for_counts_only_from_a_trusted_proxy(settings: Any) -> None:
    import ipaddress

    settings.TRUSTED_PROXY_NETWORKS = [ipaddress.ip_network("10.0.0.0/8")]
    assert client_address("10.1.2.3", "198.51.100.4, 10.9.9.9") == "198.51.100.4"
    # From anyone else the header is whatever the client wrote: ignored.
    assert client_address("203.0.113.5", "198.51.100.4") == "203.0.113.5"
    assert client_address("10.1.2.3", None) == "10.1.2.3"
    settings.TRUSTED_PROXY_NETWORKS = []
    assert client_address("10.1.2.3", "198.51.100.4") == "10.1.2.3"


def test_the_management_api_answers_429_to_a_throttled_address(alice, limit) -> None:
    for i in range(limit + 1):
        assert key_client(BAD.format(i)).get("/api/v1/keys").status_code == 401
    resp = key_client(BAD.format(77)).get("/api/v1/keys")
    assert resp.status_code == 429
    assert "failed authentication" in resp.json()["detail"]
    assert int(resp["Retry-After"]) <= 60
