"""/api/v1/cache: stats, the dry-run lookup and purges, on entries the gateway stored."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tenants.services import api_key_create
from tests.conftest import key_client
from tests.gateway.conftest import add_model
from tests.gateway.test_cache_exact import HELLO, _ask, _caching, _stored

COST = (Decimal(13) * 2 + Decimal(5) * 8) / Decimal(1_000_000)  # one fake-ok answer


def _manager(gw: Any) -> Any:
    _, plaintext = api_key_create(tenant=gw.tenant, name="ops", can_manage=True)
    return key_client(plaintext)


def test_stats_count_hits_by_kind_and_what_they_saved(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    _caching(gw)
    _ask(gw.client())
    _stored(gw.tenant.pk, 1)
    _ask(gw.client())
    _ask(gw.client())
    gw.usage(expected=3)
    body = _manager(gw).get("/api/v1/cache/stats").json()
    assert body["entries"] == {"exact": 1, "semantic": 0}
    assert body["requests"] == 3
    assert body["hits"] == {"exact": 2, "semantic": 0}
    assert body["hit_rate"] == round(2 / 3, 4)
    assert Decimal(body["savings_usd"]) == 2 * COST
    assert [(m["model"], m["requests"], m["hits"]["exact"]) for m in body["by_model"]] == [
        ("fake-ok", 3, 2)
    ]
    resp = _manager(gw).get("/api/v1/cache/stats?until=2020-01-01")
    empty = resp.json()
    assert resp.status_code == 200, empty
    assert empty["requests"] == 0 and empty["hit_rate"] == 0.0
    bad = _manager(gw).get("/api/v1/cache/stats?since=yesterday")
    assert bad.status_code == 400 and bad.json()["field"] == "since"


def test_a_lookup_says_what_would_answer_and_changes_nothing(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    client = _manager(gw)
    off = client.post(
        "/api/v1/cache/lookup", {"model": "fake-ok", "messages": HELLO}, format="json"
    )
    assert off.status_code == 200 and off.json()["cacheable"] is False
    _caching(gw)
    _ask(gw.client())
    _stored(gw.tenant.pk, 1)
    gw.usage(expected=1)
    calls = len(gw.fakes["openai"].calls)
    hit = client.post(
        "/api/v1/cache/lookup", {"model": "fake-ok", "messages": HELLO}, format="json"
    )
    body = hit.json()
    assert (body["cacheable"], body["hit"], body["mode"]) == (True, "exact", "exact")
    assert body["entry"]["model"] == "fake-ok"
    assert Decimal(body["entry"]["cost_usd"]) == COST
    assert body["entry"]["response"]["choices"][0]["message"]["content"]
    miss = client.post(
        "/api/v1/cache/lookup",
        {"model": "fake-ok", "messages": HELLO, "temperature": 0.1},
        format="json",
    ).json()
    assert miss["hit"] is None and miss["partition"] != body["partition"]
    bad = client.post("/api/v1/cache/lookup", {"model": "fake-ok"}, format="json")
    assert bad.status_code == 400 and bad.json()["field"] == "messages"
    assert len(gw.fakes["openai"].calls) == calls
    assert len(gw.usage(expected=2, timeout=0.3)) == 1  # lookups are not requests


def test_a_purge_empties_the_cache_of_a_model_or_of_everything(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    add_model(gw.providers["fakeai"], "fake-ok-2")
    _caching(gw)
    _ask(gw.client())
    _ask(gw.client(), model="fake-ok-2")
    assert _stored(gw.tenant.pk, 2) == 2
    refused = key_client(gw.plaintext).delete("/api/v1/cache")
    assert refused.status_code == 403
    client = _manager(gw)
    one = client.delete("/api/v1/cache?model=fake-ok-2").json()
    assert one["deleted"] == {"exact": 1, "semantic": 0}
    assert _ask(gw.client(), model="fake-ok-2").headers["x-aura-cache"] == "miss"
    assert _ask(gw.client()).headers["x-aura-cache"] == "exact"
    _stored(gw.tenant.pk, 2)
    everything = client.delete("/api/v1/cache").json()
    assert everything["deleted"] == {"exact": 2, "semantic": 0}
    assert _ask(gw.client()).headers["x-aura-cache"] == "miss"
