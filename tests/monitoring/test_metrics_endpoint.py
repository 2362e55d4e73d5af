"""GET /metrics: the text format, the optional bearer token, and what a scrape reads from
Redis (provider health, circuit breakers), whatever state Redis is in."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from monitoring import scrape as scrape_module
from monitoring.scrape import HEALTH_KEY
from routing.gateway.breaker import OPEN_SET
from tests.monitoring.conftest import Scrape

ROOT = Path(__file__).resolve().parents[2]
TOKEN = secrets.token_urlsafe(32)


def get(client, **headers) -> Scrape:
    resp = client.get("/metrics", headers=headers)
    assert resp.status_code == 200, resp.content
    return Scrape(resp.content.decode())


def test_metrics_answers_in_the_prometheus_text_format(client):
    resp = client.get("/metrics")

    assert resp.status_code == 200
    assert resp["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "no-cache" in resp["Cache-Control"]
    families = Scrape(resp.content.decode()).families
    assert {"aura_requests", "aura_request_duration_seconds", "aura_cost_usd"} <= families


def test_a_scraper_asking_for_openmetrics_gets_it(client):
    resp = client.get("/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"})

    assert resp.status_code == 200
    assert resp["Content-Type"].startswith("application/openmetrics-text")
    assert resp.content.decode().endswith("# EOF\n")


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-" + TOKEN, f"Basic {TOKEN}", f"Bearer {TOKEN[:-1]}", "Bearer"],
)
def test_with_a_token_set_a_scrape_without_it_gets_401(client, settings, authorization):
    settings.METRICS_TOKEN = TOKEN
    headers = {"authorization": authorization} if authorization else {}

    resp = client.get("/metrics", headers=headers)

    assert resp.status_code == 401
    assert resp["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN not in resp.content.decode()
    assert b"aura_requests" not in resp.content


def test_with_a_token_set_a_scrape_with_it_is_answered(client, settings):
    settings.METRICS_TOKEN = TOKEN

    scraped = get(client, authorization=f"Bearer {TOKEN}")

    assert "aura_requests" in scraped.families


def test_a_weak_metrics_token_stops_start_up_naming_the_variable():
    code = "import django; django.setup()"
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "aura.settings",
        "DATABASE_URL": "postgres://aura@127.0.0.1:1/aura",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "API_KEY_PEPPER": secrets.token_urlsafe(32),
        "FIELD_ENCRYPTION_KEYS": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "METRICS_TOKEN": "change-me",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "METRICS_TOKEN is a placeholder" in result.stderr


def test_provider_health_and_breakers_are_read_from_redis_at_scrape_time(client, redis_state):
    redis_state.hset(
        HEALTH_KEY,
        mapping={
            "ep3": json.dumps({"status": "healthy", "score": 0.92, "provider": "openai"}),
            "ep4": json.dumps({"status": "down", "score": 0, "provider": "anthropic"}),
            "ep3:t7": json.dumps({"status": "degraded", "score": 0.5, "provider": "openai"}),
        },
    )
    redis_state.zadd(OPEN_SET, {"ep4": 2_000_000_000})

    scraped = get(client)

    assert scraped.value("aura_provider_health_score", provider="openai", endpoint="ep3") == 0.92
    assert scraped.value("aura_provider_health_score", provider="anthropic", endpoint="ep4") == 0
    assert scraped.value("aura_provider_health_score", endpoint="ep3:t7") == 0.5
    status = {
        s: scraped.value("aura_provider_health_status", endpoint="ep3", status=s)
        for s in ("healthy", "degraded", "down", "unknown")
    }
    assert status == {"healthy": 1, "degraded": 0, "down": 0, "unknown": 0}
    assert scraped.value("aura_provider_health_status", endpoint="ep4", status="down") == 1
    assert scraped.value("aura_circuit_breaker_open", endpoint="ep4") == 1
    assert scraped.value("aura_circuit_breaker_open", endpoint="ep3") == 0
    assert scraped.has("aura_circuit_breaker_open", endpoint="ep3")
    assert scraped.value("aura_metrics_source_up", source="health") == 1
    assert scraped.value("aura_metrics_source_up", source="breakers") == 1


def test_no_health_hash_and_no_open_breaker_is_an_empty_but_answered_scrape(client, redis_state):
    scraped = get(client)

    assert not scraped.has("aura_provider_health_score")
    assert not scraped.has("aura_circuit_breaker_open")
    assert scraped.value("aura_metrics_source_up", source="health") == 1


def test_garbage_in_the_health_hash_is_reported_unknown_not_a_failed_scrape(client, redis_state):
    redis_state.hset(
        HEALTH_KEY,
        mapping={
            "ep1": "not json at all",
            "ep2": "[1, 2, 3]",
            "ep5": json.dumps({"status": "exploded", "score": "high", "provider": 42}),
            "ep6": '{"status": "healthy", "score": NaN, "provider": "x"}',
            "ep7": json.dumps({"status": "healthy", "score": 7, "provider": "y"}),
            "ep8": b"\xff\xfe\x00binary",
            "ep9": json.dumps({"status": "healthy", "score": 1.0, "provider": "openai"}),
        },
    )
    redis_state.zadd(OPEN_SET, {b"ep\xff": 1})

    scraped = get(client)

    for endpoint in ("ep1", "ep2", "ep5", "ep8"):
        assert (
            scraped.value("aura_provider_health_status", endpoint=endpoint, status="unknown") == 1
        )
        assert not scraped.has("aura_provider_health_score", endpoint=endpoint)
    assert not scraped.has("aura_provider_health_score", endpoint="ep6")  # NaN: no score
    assert scraped.value("aura_provider_health_status", endpoint="ep6", status="healthy") == 1
    assert scraped.value("aura_provider_health_score", endpoint="ep7") == 1  # clamped to 0..1
    assert scraped.value("aura_provider_health_score", provider="openai", endpoint="ep9") == 1
    assert scraped.has("aura_circuit_breaker_open", endpoint="ep\ufffd")


def test_a_health_entry_past_its_expiry_is_unknown(client, redis_state):
    now = time.time()
    redis_state.hset(
        HEALTH_KEY,
        mapping={
            "ep3": json.dumps({"status": "down", "score": 0, "provider": "a", "expires": now - 5}),
            "ep4": json.dumps({"status": "down", "score": 0, "provider": "a", "expires": now + 60}),
        },
    )

    scraped = get(client)

    assert scraped.value("aura_provider_health_status", endpoint="ep3", status="unknown") == 1
    assert scraped.value("aura_provider_health_status", endpoint="ep3", status="down") == 0
    assert not scraped.has("aura_provider_health_score", endpoint="ep3")
    assert scraped.value("aura_provider_health_status", endpoint="ep4", status="down") == 1


def test_a_key_of_the_wrong_type_fails_only_its_own_source(client, redis_state):
    redis_state.set(OPEN_SET, "a string, not a sorted set")
    redis_state.hset(HEALTH_KEY, "ep3", json.dumps({"status": "healthy", "score": 1}))

    scraped = get(client)

    assert scraped.value("aura_metrics_source_up", source="breakers") == 0
    assert scraped.value("aura_metrics_source_up", source="health") == 1
    assert scraped.value("aura_provider_health_score", endpoint="ep3") == 1


def test_redis_down_leaves_the_scrape_answering(client, monkeypatch):
    nowhere = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1, socket_timeout=1)
    monkeypatch.setattr(scrape_module, "sync_client", lambda: nowhere)

    scraped = get(client)

    assert scraped.value("aura_metrics_source_up", source="health") == 0
    assert scraped.value("aura_metrics_source_up", source="breakers") == 0
    assert "aura_requests" in scraped.families
