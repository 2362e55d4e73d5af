from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from routing.gateway import context
from routing.learning.index import predictors
from routing.models import CatalogModel, Provider, RoutingPolicy


def forget_learning() -> None:
    from aura.redis import sync_client

    client = sync_client()
    for key in client.scan_iter("aura:learning:v1:*"):
        client.delete(key)
    predictors.clear()


@pytest.fixture(autouse=True)
def _fresh_learning() -> Iterator[None]:
    forget_learning()
    yield
    forget_learning()


@pytest.fixture
def two_models(db: Any) -> None:
    """A cheap model and an expensive one (keyless, so both are routable)."""
    from tests.gateway.conftest import reset_health

    reset_health()
    for slug, quality, price in (("alpha", 0.6, 0.1), ("beta", 0.9, 5.0)):
        p = Provider.objects.create(
            slug=slug, name=slug, wire_format="ollama", default_base_url="http://127.0.0.1:9"
        )
        CatalogModel.objects.create(
            provider=p,
            model_id="small" if slug == "alpha" else "big",
            quality={"chat": quality},
            input_price_per_mtok=price,
            output_price_per_mtok=price,
            capabilities=["chat"],
            tier="balanced",
        )
    context.cache.clear()


def set_policy(tenant: Any, **fields: Any) -> None:
    RoutingPolicy.objects.update_or_create(tenant=tenant, defaults=fields)
    context.cache.clear()
