"""Outcomes in (import, feedback), predictions out (/api/v1/route), through the real API.

The memory: arithmetic word problems that the cheap model (alpha/small) gets wrong and the
expensive one (beta/big) right, and greetings both get right. A learned router sends a new
arithmetic problem to beta/big and a new greeting to alpha/small; the catalog alone
(0.6 vs 0.9 for every prompt) cannot tell them apart.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from routing.gateway import context
from routing.learning.models import OutcomeImport, OutcomeMemory
from routing.learning.services import outcome_import_run
from routing.models import CatalogModel
from tests.learning.conftest import set_policy

pytestmark = pytest.mark.django_db

IMPORT = "/api/v1/router/outcomes/import"
ROUTE = "/api/v1/route"
FEEDBACK = "/api/v1/router/feedback"
NAMES = ["Ann", "Bo", "Cy", "Dee", "Eli", "Fay", "Gus", "Hal", "Ivy", "Jo", "Kim", "Lu"]


def math_prompt(i: int) -> str:
    return (
        f"{NAMES[i % 12]} buys {i + 3} boxes of {2 * i + 5} pencils and gives away {i + 1} "
        f"pencils. How many pencils are left? Compute the number."
    )


def greeting(i: int) -> str:
    return f"Say a warm hello to my friend {NAMES[i % 12]} and wish them a lovely day."


def outcome_lines(n: int = 30) -> list[dict[str, Any]]:
    lines = []
    for i in range(n):
        for text, small in ((math_prompt(i), 0.0), (greeting(i), 1.0)):
            lines.append(
                {
                    "prompt": text,
                    "model": "alpha/small",
                    "quality": small,
                    "external_id": f"{i}-{small}-s",
                }
            )
            lines.append(
                {
                    "prompt": text,
                    "model": "big",
                    "quality": 1.0,
                    "external_id": f"{i}-{small}-b",
                    "cost_usd": 0.01,
                }
            )
    return lines


def post_import(client: Any, lines: list[Any], fmt: str = "jsonl") -> dict[str, Any]:
    if fmt == "jsonl":
        body = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines)
        resp = client.generic("POST", IMPORT, body, content_type="application/x-ndjson")
    else:
        resp = client.generic("POST", IMPORT, "\n".join(lines), content_type="text/csv")
    assert resp.status_code == 202, resp.content
    job = resp.json()
    assert job["status"] == "queued"
    assert resp.headers["Location"].endswith(f"/import/{job['id']}")
    outcome_import_run(import_id=job["id"])  # what the Celery task does
    return client.get(f"{IMPORT}/{job['id']}").json()


def route(client: Any, text: str, **extra: Any) -> dict[str, Any]:
    body = {"model": "auto", "messages": [{"role": "user", "content": text}], **extra}
    resp = client.post(ROUTE, body, format="json")
    assert resp.status_code == 200, resp.json()
    return resp.json()


def test_imported_outcomes_teach_the_router_which_prompts_need_the_big_model(alice, two_models):
    set_policy(alice.tenant, learning={"enabled": True}, objective="minimize_cost", min_quality=0.7)
    job = post_import(alice.client, outcome_lines())
    assert job["status"] == "done", job
    assert (job["imported"], job["failed"], job["duplicates"]) == (120, 0, 0)
    assert job["progress"] == 1.0

    hard = route(alice.client, math_prompt(40))
    easy = route(alice.client, greeting(40))
    assert hard["model"] == "beta/big"
    assert easy["model"] == "alpha/small"
    small = next(c for c in easy["candidates"] if c["model"] == "alpha/small")
    assert small["quality_source"] == "learned"
    assert small["predicted_quality"] > 0.8
    assert small["evidence"]["neighbours"] > 0 and 0 < small["evidence"]["confidence"] < 1
    excluded = {e["model"]: e["reason"] for e in hard["excluded"]}
    assert excluded["alpha/small"] == "below_min_quality"


def test_without_learning_the_catalog_quality_decides(alice, two_models):
    set_policy(alice.tenant, objective="minimize_cost", min_quality=0.5)
    post_import(alice.client, outcome_lines())
    body = route(alice.client, math_prompt(40))
    assert body["model"] == "alpha/small"
    assert {c["quality_source"] for c in body["candidates"]} == {"catalog"}
    assert body["learning"] is None


def test_a_reimport_counts_duplicates_and_stores_nothing_twice(alice, two_models):
    post_import(alice.client, outcome_lines(5))
    again = post_import(alice.client, outcome_lines(5))
    assert (again["imported"], again["duplicates"]) == (0, 20)
    assert OutcomeMemory.objects.filter(tenant=alice.tenant).count() == 20


def test_bad_rows_are_reported_by_line_and_the_good_ones_imported(alice, two_models):
    lines = [
        {"prompt": "hello", "model": "alpha/small", "quality": 0.5},
        {"prompt": "hello", "model": "nope/model", "quality": 0.5},
        {"prompt": "hello", "model": "alpha/small", "quality": 1.5},
        "not json",
        {"model": "alpha/small", "quality": 0.5},
        {"messages": [{"role": "user", "content": "hi"}], "model": "small", "quality": 1},
    ]
    job = post_import(alice.client, lines)
    assert (job["imported"], job["failed"]) == (2, 4)
    errors = {e["line"]: e["error"] for e in job["errors"]}
    assert "not a model of the catalog" in errors[2]
    assert "quality must be between 0 and 1" in errors[3]
    assert "not JSON" in errors[4]
    assert "prompt" in errors[5]


def test_csv_imports_read_the_header(alice, two_models):
    rows = [
        "prompt,model,quality,latency_ms,success",
        '"Add 2 and 3, please",alpha/small,1,120,true',
        "hello there,big,0.5,,false",
    ]
    job = post_import(alice.client, rows, fmt="csv")
    assert (job["imported"], job["failed"]) == (2, 0), job
    stored = OutcomeMemory.objects.get(tenant=alice.tenant, model_key="beta/big")
    assert stored.success is False and stored.prompt == ""  # no text unless opted in


def test_an_import_needs_a_format_and_an_admin(alice, bob, two_models):
    resp = alice.client.generic("POST", IMPORT, "x", content_type="application/json")
    assert resp.status_code == 400 and resp.json()["field"] == "format"
    resp = bob.client.generic("POST", IMPORT, "{}", content_type="application/x-ndjson")
    assert resp.status_code == 403


def test_charlie_cannot_see_alices_import(alice, charlie, two_models):
    job = post_import(alice.client, outcome_lines(1))
    assert charlie.client.get(f"{IMPORT}/{job['id']}").status_code == 404
    assert OutcomeImport.objects.filter(tenant=charlie.tenant).count() == 0


def test_feedback_names_what_is_wrong(alice):
    assert alice.client.post(FEEDBACK, {"quality": 1}, format="json").json()["field"] == (
        "request_id"
    )
    bad = alice.client.post(FEEDBACK, {"request_id": "r1", "quality": 2}, format="json")
    assert bad.status_code == 400 and bad.json()["field"] == "quality"
    both = alice.client.post(
        FEEDBACK, {"request_id": "r1", "quality": 1, "thumbs": "up"}, format="json"
    )
    assert both.status_code == 400
    thumbs = alice.client.post(FEEDBACK, {"request_id": "r1", "thumbs": "sideways"}, format="json")
    assert thumbs.json()["field"] == "thumbs"
    unknown = alice.client.post(FEEDBACK, {"request_id": "r1", "thumbs": "up"}, format="json")
    assert unknown.status_code == 404


def test_a_dry_run_quality_target_orders_by_cost_within_the_target(alice, two_models):
    within = route(alice.client, "hello", quality_target=0.6)
    assert within["model"] == "alpha/small"  # 0.6 >= 0.6 x 0.9: cheapest of those
    assert within["ordering"] == {"mode": "target", "quality_target": 0.6}
    strict = route(alice.client, "hello", quality_target=0.95)
    assert strict["model"] == "beta/big"
    bad = alice.client.post(
        ROUTE,
        {"model": "auto", "messages": [{"role": "user", "content": "x"}], "quality_target": 0},
        format="json",
    )
    assert bad.status_code == 400 and bad.json()["field"] == "quality_target"


def test_objectives_mean_what_they_say(alice, two_models):
    assert route(alice.client, "hello", objective="maximize_quality")["model"] == "beta/big"
    assert route(alice.client, "hello", objective="minimize_cost")["model"] == "alpha/small"
    set_policy(alice.tenant, quality_target=0.95)
    body = route(alice.client, "hello")
    assert body["model"] == "beta/big" and body["ordering"]["quality_target"] == 0.95


def test_a_manage_key_can_import(alice_manage_key, two_models):
    from tests.conftest import key_client

    _, plaintext = alice_manage_key
    job = post_import(key_client(plaintext), outcome_lines(1))
    assert job["imported"] == 4
    assert OutcomeImport.objects.get(pk=job["id"]).created_by is None


def test_balanced_keeps_near_the_best_quality_as_cheaply_as_it_can(alice, two_models):
    """Catalog: small 0.6 (cheap), big 0.9. Within 80 % of 0.9 is 0.72: only big."""
    body = route(alice.client, "hello")
    assert body["ordering"] == {"mode": "target", "quality_target": 0.8}
    assert body["model"] == "beta/big"
    assert body["fallbacks"] == ["alpha/small"]
    CatalogModel.objects.filter(model_id="small").update(quality={"chat": 0.85})
    context.cache.clear()
    assert route(alice.client, "hello")["model"] == "alpha/small"  # 0.85 >= 0.72: cheapest
