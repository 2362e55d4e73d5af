"""The policy's ``cache`` block through the API and the YAML document."""

from __future__ import annotations

import pytest
import yaml

from routing.gateway import context
from routing.models import RoutingPolicy

pytestmark = pytest.mark.django_db

POLICY = "/api/v1/router/policy"


def test_caching_is_off_by_default_and_a_patch_turns_it_on(alice):
    body = alice.client.get(POLICY).json()
    assert body["cache"] == {
        "mode": "off",
        "ttl_seconds": 3600,
        "similarity_threshold": 0.75,
        "embedder": "wordllama",
    }
    resp = alice.client.patch(
        POLICY, {"cache": {"mode": "exact", "ttl_seconds": 120}}, format="json"
    )
    assert resp.status_code == 200, resp.json()
    assert resp.json()["cache"]["mode"] == "exact"
    stored = RoutingPolicy.objects.get(tenant=alice.tenant)
    assert stored.cache["mode"] == "exact" and stored.cache["ttl_seconds"] == 120
    # A partial block changes only what it names.
    alice.client.patch(POLICY, {"cache": {"ttl_seconds": 60}}, format="json")
    cache = RoutingPolicy.objects.get(tenant=alice.tenant).cache
    assert (cache["mode"], cache["ttl_seconds"]) == ("exact", 60)
    settings = context.build_context(alice.tenant.pk).cache
    assert (settings.mode, settings.ttl_seconds, settings.enabled) == ("exact", 60, True)


@pytest.mark.parametrize(
    ("cache", "param"),
    [
        ({"mode": "sometimes"}, "cache.mode"),
        ({"ttl_seconds": 0}, "cache.ttl_seconds"),
        ({"ttl_seconds": "60"}, "cache.ttl_seconds"),
        ({"similarity_threshold": 1.5}, "cache.similarity_threshold"),
        ({"embedder": "nope"}, "cache.embedder"),
        ({"colour": "blue"}, "cache.colour"),
        ("exact", "cache"),
    ],
)
def test_bad_cache_settings_are_refused_naming_the_field(alice, cache, param):
    resp = alice.client.patch(POLICY, {"cache": cache}, format="json")
    assert resp.status_code == 400
    assert resp.json()["field"] == param, resp.json()
    assert resp.json()["detail"].startswith(param)
    assert not RoutingPolicy.objects.filter(tenant=alice.tenant, version__gt=1).exists()


def test_the_cache_block_round_trips_through_the_yaml_document(alice):
    alice.client.patch(POLICY, {"cache": {"mode": "semantic"}}, format="json")
    text = alice.client.get(f"{POLICY}/export").content.decode()
    entry = yaml.safe_load(text)["tenants"][alice.tenant.slug]
    assert entry["cache"]["mode"] == "semantic"
    alice.client.patch(POLICY, {"cache": {"mode": "off"}}, format="json")
    resp = alice.client.post(f"{POLICY}/import", text, content_type="application/yaml")
    assert resp.status_code == 200, resp.json()
    assert RoutingPolicy.objects.get(tenant=alice.tenant).cache["mode"] == "semantic"
