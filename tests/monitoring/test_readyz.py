"""/readyz: 200 when every dependency answers, 503 naming each one that does not."""

from __future__ import annotations

import pytest
from celery import Celery
from django.db import OperationalError, connections
from django.test import Client

from aura import redis as aura_redis
from monitoring import views

pytestmark = pytest.mark.django_db

ALL_CHECKS = {"database", "migrations", "redis", "broker"}


@pytest.fixture
def dead_socket(tmp_path) -> str:
    return str(tmp_path / "nobody-listens-here.sock")


@pytest.fixture
def redis_down(settings, dead_socket):
    # The shared client is built once per process from REDIS_URL; rebuild it around the change.
    settings.REDIS_URL = f"unix://{dead_socket}?db=0"
    aura_redis.sync_client.cache_clear()
    yield
    # Drop the dead client; the settings fixture restores REDIS_URL right after this.
    aura_redis.sync_client.cache_clear()


@pytest.fixture
def broker_down(monkeypatch, dead_socket):
    monkeypatch.setattr(
        views,
        "celery_app",
        Celery("dead", broker=f"redis+socket://{dead_socket}", set_as_current=False),
    )


@pytest.fixture
def database_down(monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("connection to server on socket failed: No such file or directory")

    monkeypatch.setattr(connections["default"], "cursor", refuse)
    monkeypatch.setattr(views, "_migrations_ok", False)


def test_readyz_is_200_with_every_check_ok():
    resp = Client().get("/readyz")
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert body["status"] == "ok"
    assert body["down"] == []
    assert set(body["checks"]) == ALL_CHECKS
    assert all(check["ok"] for check in body["checks"].values())
    assert "no-cache" in resp["Cache-Control"]


def test_readyz_is_503_naming_redis_and_the_broker_when_redis_is_unreachable(
    redis_down, broker_down
):
    resp = Client().get("/readyz")
    assert resp.status_code == 503
    body = resp.json()
    assert body["status"] == "unavailable"
    assert set(body["down"]) == {"redis", "broker"}
    assert "ConnectionError" in body["checks"]["redis"]["error"]
    assert body["checks"]["database"]["ok"] is True


def test_readyz_names_only_redis_when_just_the_cache_is_unreachable(redis_down):
    resp = Client().get("/readyz")
    assert resp.status_code == 503
    assert resp.json()["down"] == ["redis"]


def test_readyz_is_503_naming_the_database_when_it_is_unreachable(database_down):
    resp = Client().get("/readyz")
    assert resp.status_code == 503
    body = resp.json()
    assert "database" in body["down"]
    assert "OperationalError" in body["checks"]["database"]["error"]
    assert body["checks"]["redis"]["ok"] is True


@pytest.mark.django_db(transaction=True)
def test_readyz_reports_a_real_unapplied_migration(monkeypatch):
    # The newest billing migration, recorded as not applied: what a deploy that forgot to
    # migrate looks like to the real migration executor.
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.recorder import MigrationRecorder

    (leaf,) = MigrationLoader(connection).graph.leaf_nodes("billing")
    recorder = MigrationRecorder(connection)
    monkeypatch.setattr(views, "_migrations_ok", False)
    recorder.record_unapplied(*leaf)
    try:
        resp = Client().get("/readyz")
    finally:
        recorder.record_applied(*leaf)
    assert resp.status_code == 503
    assert resp.json()["down"] == ["migrations"]
    assert resp.json()["checks"]["migrations"]["error"] == (
        f"RuntimeError: 1 unapplied migration(s): {leaf[0]}.{leaf[1]}"
    )
    assert Client().get("/readyz").status_code == 200  # applied again: ready


def test_readyz_error_messages_are_bounded(monkeypatch):
    def chatty():
        raise RuntimeError("x" * 5000)

    monkeypatch.setitem(views.CHECKS, "redis", chatty)
    error = Client().get("/readyz").json()["checks"]["redis"]["error"]
    assert len(error) <= 300
