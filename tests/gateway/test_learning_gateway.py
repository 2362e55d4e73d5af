"""Learned routing through the real gateway: predictions steer `auto`, and feedback on a
served request joins the tenant's outcome memory."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest

from aura.redis import sync_client
from routing.learning import store
from routing.learning.features import prompt_hash
from routing.learning.index import predictors
from routing.learning.models import OutcomeMemory
from routing.learning.services import predictor_refit
from routing.models import RoutingOutcome
from tenants.services import api_key_create
from tests.conftest import key_client
from tests.gateway.conftest import add_model
from tests.learning.conftest import forget_learning
from tests.learning.test_learning_api import greeting, math_prompt

FEEDBACK = "/api/v1/router/feedback"


@pytest.fixture(autouse=True)
def _fresh_learning() -> Any:
    forget_learning()
    yield
    forget_learning()


def _ask(gw: Any, text: str) -> Any:
    return gw.client().chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": text}]
    )


def _served(tenant_id: int, request_id: str, timeout: float = 5.0) -> bytes | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        raw = sync_client().get(store.served_key(tenant_id, request_id))
        if raw:
            return raw.encode() if isinstance(raw, str) else raw
        time.sleep(0.02)
    return None


def _memory(gw: Any, cheap: str, good: str) -> None:
    """The cheap model fails arithmetic and handles greetings; the good one does both."""
    from routing.learning import features

    rows = []
    for i in range(30):
        for text, q in ((math_prompt(i), 0.0), (greeting(i), 1.0)):
            f = features.prompt_features(text)
            for model, quality in ((cheap, q), (good, 1.0)):
                rows.append(OutcomeMemory(
                    tenant=gw.tenant, prompt_hash=f.prompt_hash, embedder=features.EMBEDDER,
                    embedding=f.embedding, lexical=f.lexical, model_key=model, quality=quality,
                    source=OutcomeMemory.Source.IMPORT,
                ))  # fmt: skip
    OutcomeMemory.objects.bulk_create(rows)
    predictor_refit(tenant_id=gw.tenant.pk)
    predictors.clear()


def test_auto_follows_the_learned_quality_of_each_prompt(gw):
    add_model(
        gw.providers["fakeai"], "fake-cheap", price_in=Decimal("0.1"), price_out=Decimal("0.1")
    )
    add_model(gw.providers["fakeai"], "fake-good", price_in=Decimal(5), price_out=Decimal(5))
    gw.policy(learning={"enabled": True}, objective="minimize_cost", min_quality=0.7)
    before = _ask(gw, math_prompt(50))
    assert before.headers["x-aura-model"] == "fake-cheap"  # catalog: 0.7 for both
    _memory(gw, "fakeai/fake-cheap", "fakeai/fake-good")
    assert _ask(gw, math_prompt(50)).headers["x-aura-model"] == "fake-good"
    assert _ask(gw, greeting(50)).headers["x-aura-model"] == "fake-cheap"


def test_feedback_on_a_served_request_joins_the_memory(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    gw.policy(learning={"enabled": True})
    resp = _ask(gw, "What is the capital of France?")
    request_id = resp.headers["x-aura-request-id"]
    assert _served(gw.tenant.pk, request_id) is not None
    _, manage = api_key_create(tenant=gw.tenant, name="ops", can_manage=True)
    out = key_client(manage).post(FEEDBACK, {"request_id": request_id, "thumbs": "up"},
                                  format="json")  # fmt: skip
    assert out.status_code == 201, out.json()
    assert out.json()["learned"] is True and out.json()["model"] == "fakeai/fake-ok"
    row = OutcomeMemory.objects.get(tenant=gw.tenant, request_id=request_id)
    assert row.quality == 1.0 and row.source == "feedback" and row.prompt == ""
    assert row.prompt_hash == prompt_hash("What is the capital of France?")
    assert row.cost_usd == Decimal(resp.headers["x-aura-cost-usd"])
    # A second opinion corrects the first rather than counting twice.
    key_client(manage).post(FEEDBACK, {"request_id": request_id, "quality": 0.25}, format="json")
    assert OutcomeMemory.objects.get(tenant=gw.tenant, request_id=request_id).quality == 0.25


def test_without_learning_feedback_is_recorded_but_nothing_is_kept(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    resp = _ask(gw, "hello")
    request_id = resp.headers["x-aura-request-id"]
    gw.usage(expected=1)
    assert _served(gw.tenant.pk, request_id, timeout=0.3) is None
    _, manage = api_key_create(tenant=gw.tenant, name="ops", can_manage=True)
    out = key_client(manage).post(FEEDBACK, {"request_id": request_id, "quality": 0.5},
                                  format="json")  # fmt: skip
    assert out.status_code == 201 and out.json()["learned"] is False
    assert "not learned from" in out.json()["detail"]
    assert not OutcomeMemory.objects.filter(tenant=gw.tenant).exists()
    assert RoutingOutcome.objects.get(tenant=gw.tenant, request_id=request_id).quality_score == 0.5


def test_a_recorded_outcome_of_a_served_request_joins_the_memory(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    gw.policy(learning={"enabled": True})
    resp = _ask(gw, "Summarise the plot of Hamlet in one line.")
    request_id = resp.headers["x-aura-request-id"]
    assert _served(gw.tenant.pk, request_id) is not None
    _, manage = api_key_create(tenant=gw.tenant, name="ops", can_manage=True)
    record = {
        "model": "fakeai/fake-ok",
        "latency_ms": 420,
        "cost_usd": "0.0001",
        "success": True,
        "quality_score": 0.75,
        "request_id": request_id,
    }
    out = key_client(manage).post("/api/v1/router/record", record, format="json")
    assert out.status_code == 201, out.json()
    assert out.json()["learned"] is True
    row = OutcomeMemory.objects.get(tenant=gw.tenant, request_id=request_id)
    assert (row.quality, row.source, row.latency_ms) == (0.75, "record", 420)
    # A record without a quality score (or of an unknown request) is kept for the metrics only.
    plain = {**record, "quality_score": None, "request_id": "req-unknown"}
    out = key_client(manage).post("/api/v1/router/record", plain, format="json")
    assert out.status_code == 201 and out.json()["learned"] is False
    assert OutcomeMemory.objects.filter(tenant=gw.tenant).count() == 1


def test_feedback_on_a_streamed_request_joins_the_memory_too(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    gw.policy(learning={"enabled": True})
    with gw.client().chat.completions.with_streaming_response.create(
        model="auto",
        messages=[{"role": "user", "content": "Stream me a haiku about rivers."}],
        stream=True,
    ) as resp:
        request_id = resp.headers["x-aura-request-id"]
        chunks = list(resp.iter_lines())
    assert any("[DONE]" in c for c in chunks)
    assert _served(gw.tenant.pk, request_id) is not None
    _, manage = api_key_create(tenant=gw.tenant, name="ops", can_manage=True)
    out = key_client(manage).post(FEEDBACK, {"request_id": request_id, "thumbs": "down"},
                                  format="json")  # fmt: skip
    assert out.status_code == 201 and out.json()["learned"] is True
    row = OutcomeMemory.objects.get(tenant=gw.tenant, request_id=request_id)
    assert row.quality == 0.0 and row.prompt_hash == prompt_hash("Stream me a haiku about rivers.")
