"""An endpoint's in-flight limit (load shedding): set through the BYOK API and the admin,
and what the gateway's routing context makes of it."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from routing.gateway.context import build_context
from routing.models import CatalogModel, Provider, ProviderEndpoint
from tests.conftest import Persona

pytestmark = pytest.mark.django_db

ENDPOINTS = "/api/v1/endpoints"
PUBLIC_URL = "https://93.184.216.34/v1"


@pytest.fixture
def openai(db: Any) -> Provider:
    provider = Provider.objects.create(
        slug="openai", name="OpenAI", wire_format="openai", requires_api_key=False
    )
    CatalogModel.objects.create(provider=provider, model_id="gpt-x", capabilities=["chat"])
    return provider


def test_a_tenant_sets_and_clears_its_own_endpoints_limit(alice: Persona, openai: Provider):
    body = {"provider": "openai", "name": "byo", "base_url": PUBLIC_URL, "max_in_flight": 4}
    created = alice.client.post(ENDPOINTS, body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["max_in_flight"] == 4
    url = f"{ENDPOINTS}/{created.json()['id']}"

    cleared = alice.client.patch(url, {"max_in_flight": None}, format="json")

    assert cleared.status_code == 200, cleared.json()
    assert cleared.json()["max_in_flight"] is None
    assert ProviderEndpoint.objects.get().max_in_flight is None


@pytest.mark.parametrize("value", [-1, 100_001, "many", 1.5])
def test_a_bad_limit_is_a_400_naming_it_and_changes_nothing(
    alice: Persona, openai: Provider, value: Any
):
    body = {"provider": "openai", "name": "byo", "base_url": PUBLIC_URL, "max_in_flight": 2}
    url = f"{ENDPOINTS}/{alice.client.post(ENDPOINTS, body, format='json').json()['id']}"

    resp = alice.client.patch(url, {"max_in_flight": value}, format="json")

    assert resp.status_code == 400
    assert "max_in_flight" in resp.json()
    assert ProviderEndpoint.objects.get().max_in_flight == 2


def test_the_gateway_takes_the_endpoints_limit_else_the_setting(
    acme: Any, openai: Provider, settings: Any
):
    settings.SHED_MAX_IN_FLIGHT = 7
    ProviderEndpoint.objects.create(
        provider=openai, name="a", base_url="https://a.example/v1", max_in_flight=3
    )
    ProviderEndpoint.objects.create(provider=openai, name="b", base_url="https://b.example/v1")
    ProviderEndpoint.objects.create(
        provider=openai, name="c", base_url="https://c.example/v1", max_in_flight=0
    )

    targets = build_context(acme.pk).targets

    assert {k: t.max_in_flight for k, t in targets.items()} == {
        "openai/gpt-x@a": 3,
        "openai/gpt-x@b": 7,  # empty: the platform default
        "openai/gpt-x@c": 0,  # no limit
    }


def test_an_operator_sets_a_platform_endpoints_limit_in_the_admin(
    admin_client: Client, openai: Provider
):
    endpoint = ProviderEndpoint.objects.create(
        provider=openai, name="main", base_url="https://api.example.com/v1"
    )
    page = admin_client.get(f"/admin/routing/providerendpoint/{endpoint.pk}/change/")
    assert 'name="max_in_flight"' in page.content.decode()
