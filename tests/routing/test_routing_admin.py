"""The routing admin: credentials are write-only, policies validated, history read-only."""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest
from django.test import Client

from aura import crypto
from routing.catalog.services import credential_create, credential_secret
from routing.models import (
    CatalogModel,
    Credential,
    Provider,
    ProviderEndpoint,
    RoutingPolicy,
    WeightHistory,
)
from tenants.models import Tenant

SECRET = "sk-admin-test-5e6f7a8b9c0d1234"
URL = "/admin/routing/"


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


@pytest.fixture(autouse=True)
def field_keys(settings: Any) -> list[str]:
    settings.FIELD_ENCRYPTION_KEYS = [new_key()]
    return settings.FIELD_ENCRYPTION_KEYS


@pytest.fixture
def openai(db: Any) -> Provider:
    return Provider.objects.create(slug="openai", name="OpenAI", wire_format="openai")


@pytest.fixture
def credential(openai: Provider) -> Credential:
    return credential_create(provider=openai, name="main", secret=SECRET)


def assert_no_secret(html: str, credential: Credential) -> None:
    credential.refresh_from_db()
    assert SECRET not in html
    assert credential.ciphertext not in html
    assert credential.ciphertext.split(":")[2][:16] not in html


def test_credential_pages_never_show_the_secret_or_its_ciphertext(
    admin_client: Client, credential: Credential
) -> None:
    changelist = admin_client.get(f"{URL}credential/")
    change = admin_client.get(f"{URL}credential/{credential.pk}/change/")
    delete = admin_client.get(f"{URL}credential/{credential.pk}/delete/")
    for resp in (changelist, change, delete):
        assert resp.status_code == 200
        assert_no_secret(resp.content.decode(), credential)
    assert "••••1234" in changelist.content.decode()
    assert 'type="password"' in change.content.decode()


def test_adding_a_credential_encrypts_it_and_shows_only_the_masked_form(
    admin_client: Client, openai: Provider
) -> None:
    resp = admin_client.post(
        f"{URL}credential/add/",
        {"provider": openai.pk, "name": "main", "enabled": "on", "secret": SECRET},
        follow=True,
    )
    assert resp.status_code == 200
    cred = Credential.objects.get()
    assert credential_secret(cred) == SECRET
    assert cred.ciphertext.startswith(f"v1:{crypto.keys()[0].id}:")
    assert_no_secret(resp.content.decode(), cred)


def test_a_new_credential_requires_a_secret(admin_client: Client, openai: Provider) -> None:
    resp = admin_client.post(
        f"{URL}credential/add/", {"provider": openai.pk, "name": "main", "enabled": "on"}
    )
    assert resp.status_code == 200
    assert resp.context["adminform"].form.errors["secret"] == ["This field is required."]
    assert not Credential.objects.exists()


def test_a_blank_secret_on_change_keeps_the_current_one(
    admin_client: Client, credential: Credential
) -> None:
    before = credential.ciphertext
    resp = admin_client.post(
        f"{URL}credential/{credential.pk}/change/", {"name": "renamed", "secret": ""}
    )
    assert resp.status_code == 302
    credential.refresh_from_db()
    assert (credential.name, credential.ciphertext, credential.enabled) == (
        "renamed",
        before,
        False,
    )
    assert credential_secret(credential) == SECRET


def test_a_new_secret_on_change_rotates_it(admin_client: Client, credential: Credential) -> None:
    resp = admin_client.post(
        f"{URL}credential/{credential.pk}/change/",
        {"name": "main", "enabled": "on", "secret": "sk-rotated-value-00009876"},
    )
    assert resp.status_code == 302
    credential.refresh_from_db()
    assert credential_secret(credential) == "sk-rotated-value-00009876"
    assert credential.last4 == "9876"
    assert credential.rotated_at is not None


def test_the_reencrypt_action_moves_credentials_to_the_newest_key(
    admin_client: Client, credential: Credential, settings: Any, field_keys: list[str]
) -> None:
    settings.FIELD_ENCRYPTION_KEYS = [new_key(), field_keys[0]]
    resp = admin_client.post(
        f"{URL}credential/",
        {"action": "reencrypt", "_selected_action": [credential.pk]},
        follow=True,
    )
    assert "Re-encrypted 1 credential(s)" in resp.content.decode()
    credential.refresh_from_db()
    assert not crypto.needs_reencrypt(credential.ciphertext)
    assert_no_secret(resp.content.decode(), credential)


def policy_form(tenant: Tenant, **weights: str) -> dict[str, Any]:
    return {
        "tenant": tenant.pk,
        "objective": "custom",
        "weight_quality": weights.get("quality", "0.5"),
        "weight_cost": weights.get("cost", "0.3"),
        "weight_latency": weights.get("latency", "0.2"),
        "allowed_providers": "",
        "denied_providers": "[]",
        "allowed_models": "",
        "denied_models": "[]",
        "fallback_depth": "2",
        "model_fallback": "same_model",
        "strategy": "scored",
        "hedge_k": "2",
        "aliases": "{}",
    }


def test_policy_weights_must_sum_to_one(admin_client: Client, acme: Tenant) -> None:
    resp = admin_client.post(f"{URL}routingpolicy/add/", policy_form(acme, latency="0.5"))
    assert resp.status_code == 200
    errors = resp.context["adminform"].form.errors
    assert errors["weight_quality"] == [
        "quality + cost + latency weights must sum to 1 (they sum to 1.3)"
    ]
    assert not RoutingPolicy.objects.exists()


def test_a_policy_with_valid_weights_is_saved(admin_client: Client, acme: Tenant) -> None:
    resp = admin_client.post(f"{URL}routingpolicy/add/", policy_form(acme))
    assert resp.status_code == 302
    policy = RoutingPolicy.objects.get(tenant=acme)
    assert policy.weights == {"quality": 0.5, "cost": 0.3, "latency": 0.2}


def test_an_operator_sets_the_model_fallback_in_the_admin(
    admin_client: Client, acme: Tenant
) -> None:
    form = {**policy_form(acme), "model_fallback": "any_model"}
    assert admin_client.post(f"{URL}routingpolicy/add/", form).status_code == 302
    assert RoutingPolicy.objects.get(tenant=acme).model_fallback == "any_model"
    form["model_fallback"] = "whatever"
    resp = admin_client.post(f"{URL}routingpolicy/add/", form)
    assert "model_fallback" in resp.context["adminform"].form.errors


def test_a_tenant_endpoint_on_a_private_address_is_refused(
    admin_client: Client, openai: Provider, acme: Tenant
) -> None:
    resp = admin_client.post(
        f"{URL}providerendpoint/add/",
        {
            "provider": openai.pk,
            "tenant": acme.pk,
            "name": "byo",
            "base_url": "http://169.254.169.254/",
            "deployments": "{}",
            "extra_headers": "{}",
            "connect_timeout": "5",
            "first_byte_timeout": "60",
            "total_timeout": "300",
            "max_retries": "2",
            "weight": "1",
            "enabled": "on",
        },
    )
    assert resp.status_code == 200
    assert "link-local" in resp.context["adminform"].form.errors["base_url"][0]
    assert not ProviderEndpoint.objects.exists()


def test_the_endpoint_list_names_platform_endpoints(admin_client: Client, openai: Provider) -> None:
    ProviderEndpoint.objects.create(provider=openai, name="main", base_url="https://api.openai.com")
    resp = admin_client.get(f"{URL}providerendpoint/")
    assert '<td class="field-owner">platform</td>' in resp.content.decode()


def test_catalog_models_are_searchable_by_alias(admin_client: Client, openai: Provider) -> None:
    CatalogModel.objects.create(provider=openai, model_id="gpt-x", aliases=["smart-one"])
    CatalogModel.objects.create(provider=openai, model_id="gpt-y")
    resp = admin_client.get(f"{URL}catalogmodel/", {"q": "smart"})
    assert resp.status_code == 200
    assert [m.model_id for m in resp.context["cl"].result_list] == ["gpt-x"]


def test_weight_history_is_read_only(admin_client: Client, acme: Tenant) -> None:
    row = WeightHistory.objects.create(tenant=acme, version=1, weights={"quality": 1})
    assert admin_client.get(f"{URL}weighthistory/").status_code == 200
    assert admin_client.get(f"{URL}weighthistory/add/").status_code == 403
    change = admin_client.get(f"{URL}weighthistory/{row.pk}/change/")
    assert change.status_code == 200
    assert 'name="_save"' not in change.content.decode()


def test_a_rejected_form_does_not_echo_the_secret_back(
    admin_client: Client, openai: Provider
) -> None:
    other = Provider.objects.create(slug="groq", name="Groq", wire_format="openai")
    endpoint = ProviderEndpoint.objects.create(provider=other, name="g", base_url="https://x.test")
    resp = admin_client.post(
        f"{URL}credential/add/",
        {"provider": openai.pk, "endpoint": endpoint.pk, "name": "main", "secret": SECRET},
    )
    assert resp.status_code == 200
    assert "belongs to provider groq" in resp.context["adminform"].form.errors["endpoint"][0]
    assert SECRET not in resp.content.decode()
    assert not Credential.objects.exists()
