"""The in-process key cache: no query when warm, revocation bounded by API_KEY_CACHE_TTL."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync

from tenants import auth
from tenants.auth import ApiKeyResolver, AuthError
from tenants.models import Tenant
from tenants.services import api_key_revoke

pytestmark = pytest.mark.django_db

TTL = 30.0


class FakeClock:
    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def _ttl(settings):
    settings.API_KEY_CACHE_TTL = TTL


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_a_warm_lookup_does_no_query(alice_key, clock, django_assert_num_queries):
    _, plaintext = alice_key
    resolver = ApiKeyResolver(clock=clock)
    resolver.resolve(plaintext)
    clock.advance(TTL - 1)
    with django_assert_num_queries(0):
        principal = resolver.resolve(plaintext)
    assert principal.tenant_slug == "acme"


def test_a_cold_lookup_reads_key_and_tenant_in_one_query_then_records_first_use(
    alice_key, clock, django_assert_num_queries
):
    _, plaintext = alice_key
    resolver = ApiKeyResolver(clock=clock)
    # 1. SELECT api key JOIN tenant WHERE prefix = …
    # 2. UPDATE last_used_at (first use of the key in this process)
    with django_assert_num_queries(2) as captured:
        resolver.resolve(plaintext)
    select, update = (q["sql"] for q in captured.captured_queries)
    assert select.startswith("SELECT") and "tenants_tenant" in select
    assert update.startswith("UPDATE") and "last_used_at" in update


# The async path hands its connection back to the pool after a cold read, which Django
# refuses inside a test transaction: these tests commit and flush instead.
@pytest.mark.django_db(transaction=True)
def test_a_cold_async_lookup_is_exactly_one_query(alice_key, clock, django_assert_num_queries):
    _, plaintext = alice_key
    resolver = ApiKeyResolver(clock=clock)
    resolver.thread_sensitive = True  # run the lookup in this thread, where queries are counted
    # 1. SELECT api key JOIN tenant WHERE prefix = … (touching is left to the caller)
    with django_assert_num_queries(1):
        principal, needs_touch = async_to_sync(resolver.aresolve)(plaintext)
    assert principal.name == "alice-app"
    assert needs_touch is True
    with django_assert_num_queries(0):
        _, needs_touch_again = async_to_sync(resolver.aresolve)(plaintext)
    assert needs_touch_again is False


# The async path hands its connection back to the pool after a cold read, which Django
# refuses inside a test transaction: these tests commit and flush instead.
@pytest.mark.django_db(transaction=True)
def test_an_expired_cache_entry_is_read_again(alice_key, clock, django_assert_num_queries):
    _, plaintext = alice_key
    resolver = ApiKeyResolver(clock=clock)
    resolver.thread_sensitive = True  # run the lookup in this thread, where queries are counted
    async_to_sync(resolver.aresolve)(plaintext)
    clock.advance(TTL + 1)
    with django_assert_num_queries(1):
        async_to_sync(resolver.aresolve)(plaintext)


@pytest.mark.django_db(transaction=True)  # the change is published on commit
def test_a_revoked_key_stops_working_elsewhere_at_the_next_change_check(alice_key, clock):
    key, plaintext = alice_key
    other_process = ApiKeyResolver(clock=clock)
    other_process.resolve(plaintext)

    api_key_revoke(key=key)

    assert other_process.resolve(plaintext).key_id == key.pk  # checked less than 1 s ago
    clock.advance(auth.AUTH_VERSION_CHECK_INTERVAL)
    with pytest.raises(AuthError) as refused:
        other_process.resolve(plaintext)
    assert refused.value.code == "revoked_api_key"


def test_a_revocation_nobody_published_takes_effect_within_the_ttl(alice_key, clock):
    # E.g. Redis was unreachable when it was revoked: the TTL is the bound.
    from django.utils import timezone

    from tenants.models import ApiKey

    key, plaintext = alice_key
    other_process = ApiKeyResolver(clock=clock)
    other_process.resolve(plaintext)

    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())

    clock.advance(TTL - 1)
    assert other_process.resolve(plaintext).key_id == key.pk  # stale, but bounded
    clock.advance(2)
    with pytest.raises(AuthError) as refused:
        other_process.resolve(plaintext)
    assert refused.value.code == "revoked_api_key"


def test_revoking_forgets_the_key_at_once_in_this_process(alice_key):
    key, plaintext = alice_key
    assert auth.resolver.resolve(plaintext).key_id == key.pk

    api_key_revoke(key=key)

    with pytest.raises(AuthError) as refused:
        auth.resolver.resolve(plaintext)
    assert refused.value.code == "revoked_api_key"


def test_a_suspension_reaches_a_cached_key_within_the_ttl(alice_key, clock):
    _, plaintext = alice_key
    resolver = ApiKeyResolver(clock=clock)
    resolver.resolve(plaintext)
    Tenant.objects.filter(slug="acme").update(status=Tenant.Status.SUSPENDED)
    clock.advance(TTL + 1)
    with pytest.raises(AuthError) as refused:
        resolver.resolve(plaintext)
    assert refused.value.code == "tenant_suspended"


def test_an_unknown_prefix_is_remembered_briefly_then_looked_up_again(
    alice, clock, django_assert_num_queries
):
    from tenants.services import api_key_create

    resolver = ApiKeyResolver(clock=clock)
    with pytest.raises(AuthError):
        resolver.resolve("aura-aaaaaaaaaaaa.secret")
    with django_assert_num_queries(0), pytest.raises(AuthError):
        resolver.resolve("aura-aaaaaaaaaaaa.secret")

    key, plaintext = api_key_create(tenant=alice.tenant, name="late")
    clock.advance(6)  # past the negative-cache TTL
    assert resolver.resolve(plaintext).key_id == key.pk
