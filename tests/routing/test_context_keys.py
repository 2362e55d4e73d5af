"""Routing-context candidate keys: a tenant's own endpoint never shares a key (and so
per-process latency/load stats) with the platform's endpoint for the same model."""

from __future__ import annotations

import pytest

from routing.catalog.services import credential_create
from routing.gateway.context import build_context
from routing.models import CatalogModel, Provider, ProviderEndpoint

pytestmark = pytest.mark.django_db


def test_a_tenants_own_endpoint_gets_its_own_candidate_key(acme, globex):
    provider = Provider.objects.create(slug="oai", name="oai", wire_format="openai")
    CatalogModel.objects.create(provider=provider, model_id="m1", capabilities=["chat"])
    platform = ProviderEndpoint.objects.create(
        provider=provider, name="main", base_url="https://api.example.com/v1"
    )
    own = ProviderEndpoint.objects.create(
        provider=provider, tenant=acme, name="mine", base_url="https://llm.acme.example/v1"
    )
    credential_create(provider=provider, name="platform", secret="sk-platform-0000000000")
    credential_create(
        provider=provider, name="acme", secret="sk-acme-000000000000", tenant=acme, endpoint=own
    )
    acme_keys = [c.key for c in build_context(acme.pk).candidates]
    globex_keys = [c.key for c in build_context(globex.pk).candidates]
    assert acme_keys == ["oai/m1@mine"]
    assert globex_keys == ["oai/m1"]
    assert build_context(globex.pk).targets["oai/m1"].endpoint_id == platform.pk
