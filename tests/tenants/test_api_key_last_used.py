"""last_used_at tells an admin when a key was last used, written at most once a minute."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tenants.auth import ApiKeyResolver
from tenants.models import ApiKey
from tests.conftest import key_client

pytestmark = pytest.mark.django_db


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _last_used(key: ApiKey):
    return ApiKey.objects.values_list("last_used_at", flat=True).get(pk=key.pk)


@pytest.fixture
def use_at(alice_key, time_machine, settings):
    """Use alice's key in one process at a given second, moving both clocks together."""
    settings.API_KEY_CACHE_TTL = 30.0
    _, plaintext = alice_key
    clock = FakeClock()
    resolver = ApiKeyResolver(clock=clock)
    start = timezone.now().replace(microsecond=0)

    def use(seconds: int) -> None:
        clock.now = 1_000.0 + seconds
        time_machine.move_to(start + timedelta(seconds=seconds), tick=False)
        resolver.resolve(plaintext)

    use.start = start
    return use


def test_last_used_at_is_written_at_most_once_a_minute(alice_key, use_at):
    key, _ = alice_key
    start = use_at.start
    assert _last_used(key) is None
    use_at(0)
    assert _last_used(key) == start
    use_at(10)  # cached entry, within the minute
    assert _last_used(key) == start
    use_at(59)  # entry reloaded after the cache TTL, still within the minute
    assert _last_used(key) == start
    use_at(125)
    assert _last_used(key) == start + timedelta(seconds=125)


def test_last_used_at_is_refreshed_once_the_minute_is_over(alice_key, use_at):
    key, _ = alice_key
    use_at(0)
    use_at(61)
    assert _last_used(key) == use_at.start + timedelta(seconds=61)


def test_last_used_at_is_refreshed_after_a_minute_even_when_the_cache_reloaded(alice_key, use_at):
    key, _ = alice_key
    use_at(0)
    use_at(45)  # reload within the minute: nothing to write yet
    use_at(61)
    assert _last_used(key) == use_at.start + timedelta(seconds=61)


def test_last_used_at_shows_in_the_api_after_a_request(alice, alice_manage_key):
    key, plaintext = alice_manage_key
    before = timezone.now()
    key_client(plaintext).get("/api/v1/tenant")
    shown = alice.client.get(f"/api/v1/keys/{key.pk}").json()["last_used_at"]
    assert shown is not None
    assert _last_used(key) >= before


def test_the_first_use_is_recorded_even_right_after_boot(alice_key):
    key, plaintext = alice_key
    just_booted = FakeClock()
    just_booted.now = 5.0
    ApiKeyResolver(clock=just_booted).resolve(plaintext)
    assert _last_used(key) is not None
