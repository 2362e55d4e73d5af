"""The per-process routing-context cache, on the real Postgres and Redis: a context built
while a change was being published is not kept past it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from routing import changes
from routing.gateway import context
from routing.models import RoutingPolicy

pytestmark = pytest.mark.django_db(transaction=True)  # changes are published on commit


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_context_read_before_a_change_is_not_kept_once_the_change_is_seen(
    acme: Any, globex: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    cache = context.ContextCache(clock=clock)
    real_build = context.build_context
    changed: list[int] = []

    def build_across_a_change(tenant_id: int) -> context.RoutingContext:
        built = real_build(tenant_id)  # read before the change below commits
        if tenant_id == acme.pk and not changed:
            changed.append(tenant_id)
            RoutingPolicy.objects.update_or_create(
                tenant=acme, defaults={"denied_providers": ["openai"]}
            )
            changes.config_changed()  # committed (autocommit): published now
            # Meanwhile another request, a second later, checks the version and sees it.
            clock.now += context.VERSION_CHECK_INTERVAL
            cache.get(globex.pk)
        return built

    monkeypatch.setattr(context, "build_context", build_across_a_change)

    async def two_requests() -> tuple[context.RoutingContext, context.RoutingContext]:
        first = await cache.aget(acme.pk)  # the request whose build straddled the change
        later = await cache.aget(acme.pk)  # no version check due: served from the cache
        return first, later

    first, later = asyncio.run(two_requests())

    assert changed == [acme.pk]
    assert first.policy.denied_providers == frozenset()  # as it was when that request began
    assert later.policy.denied_providers == frozenset({"openai"})
