"""Retries on the same model and fallbacks to the next plan step, as a client sees them.

Fake token rules (tests/fakes/scenarios.py): prompt = 10 + words of every message text,
completion = words of "fake reply: <last user words>". Prices: $2 in / $8 out per 1M.
Every provider endpoint from conftest has max_retries=1 (two attempts per plan step).
"""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest

from routing.gateway import execution
from tests.gateway.conftest import add_model

HELLO = [{"role": "user", "content": "hello there world"}]
# prompt 10 + 3 = 13, completion "fake reply: hello there world" = 5
HELLO_COST = (Decimal(13) * 2 + Decimal(5) * 8) / Decimal(1_000_000)


@pytest.fixture(autouse=True)
def backoffs(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the backoff each retry asked for, and do not actually sleep it."""
    asked: list[float] = []
    real = execution.backoff_delay

    def no_sleep(attempt: int, retry_after: float | None, rng: object = None) -> float:
        asked.append(real(attempt, retry_after))
        return 0.0

    monkeypatch.setattr(execution, "backoff_delay", no_sleep)
    return asked


def test_it_falls_back_to_the_next_model_when_the_primary_keeps_failing(gw, backoffs):
    add_model(gw.providers["fakeai"], "fake-500")
    add_model(gw.providers["fakeclaude"], "fake-ok")
    gw.policy(aliases={"chain": ["fakeai/fake-500", "fakeclaude/fake-ok"]})

    resp = gw.client().chat.completions.with_raw_response.create(model="chain", messages=HELLO)

    assert resp.parse().choices[0].message.content == "fake reply: hello there world"
    assert resp.headers["x-aura-fallbacks"] == "1"
    assert resp.headers["x-aura-provider"] == "fakeclaude"
    assert resp.headers["x-aura-model"] == "fake-ok"
    assert Decimal(resp.headers["x-aura-cost-usd"]) == HELLO_COST
    # 5xx is retried once on the same model before falling back.
    assert [c.scenario for c in gw.fakes["openai"].calls] == ["fake-500", "fake-500"]
    assert len(gw.fakes["anthropic"].calls) == 1
    assert len(backoffs) == 1
    [row] = gw.usage(1)
    assert row.status == "ok" and row.provider == "fakeclaude" and row.model == "fake-ok"
    assert row.fallbacks == 1
    assert (row.prompt_tokens, row.completion_tokens, row.cost_usd) == (13, 5, HELLO_COST)
    assert [(a["model"], a["ok"]) for a in row.attempts] == [
        ("fakeai/fake-500", False),
        ("fakeai/fake-500", False),
        ("fakeclaude/fake-ok", True),
    ]
    assert row.attempts[0]["error"] == "server" and row.attempts[0]["status"] == 500
    assert row.request_id == resp.headers["x-aura-request-id"]


def test_a_429_with_retry_after_is_retried_on_the_same_model_without_falling_back(gw, backoffs):
    add_model(gw.providers["fakeai"], "fake-ok")
    add_model(gw.providers["fakeclaude"], "fake-ok")
    gw.policy(aliases={"chain": ["fakeai/fake-ok", "fakeclaude/fake-ok"]})
    gw.fakes["openai"].set_script(["fake-429", "fake-ok"])

    resp = gw.client().chat.completions.with_raw_response.create(model="chain", messages=HELLO)

    assert resp.parse().choices[0].message.content == "fake reply: hello there world"
    assert resp.headers["x-aura-provider"] == "fakeai"
    assert resp.headers["x-aura-fallbacks"] == "0"
    assert [c.scenario for c in gw.fakes["openai"].calls] == ["fake-429", "fake-ok"]
    assert gw.fakes["anthropic"].calls == []
    # The fake sends Retry-After: 1; the backoff honours it as a floor.
    assert len(backoffs) == 1 and backoffs[0] >= 1.0
    [row] = gw.usage(1)
    assert row.status == "ok" and row.fallbacks == 0 and row.cost_usd == HELLO_COST
    assert [(a["model"], a["ok"]) for a in row.attempts] == [
        ("fakeai/fake-ok", False),
        ("fakeai/fake-ok", True),
    ]
    assert row.attempts[0]["error"] == "rate_limit" and row.attempts[0]["status"] == 429


def test_when_every_step_fails_the_client_gets_a_502_naming_what_was_tried(gw):
    add_model(gw.providers["fakeai"], "fake-500")
    add_model(gw.providers["fakeclaude"], "fake-503")
    gw.policy(aliases={"chain": ["fakeai/fake-500", "fakeclaude/fake-503"]})

    with pytest.raises(openai.InternalServerError) as info:
        gw.client().chat.completions.create(model="chain", messages=HELLO)

    err = info.value
    assert err.status_code == 502
    assert err.body["code"] == "upstream_failed" and err.body["type"] == "server_error"
    assert "fakeai/fake-500" in err.message and "fakeclaude/fake-503" in err.message
    request_id = err.response.headers["x-aura-request-id"]
    assert len(gw.fakes["openai"].calls) == 2 and len(gw.fakes["anthropic"].calls) == 2
    [row] = gw.usage(1)
    assert row.status == "error" and row.http_status == 502
    assert row.error_code == "upstream_failed" and row.request_id == request_id
    assert row.cost_usd == 0 and row.completion_tokens == 0
    assert [a["model"] for a in row.attempts] == ["fakeai/fake-500"] * 2 + [
        "fakeclaude/fake-503"
    ] * 2
    assert not any(a["ok"] for a in row.attempts)


def test_when_every_step_is_rate_limited_the_client_gets_a_429_with_retry_after(gw, backoffs):
    add_model(gw.providers["fakeai"], "fake-429")
    add_model(gw.providers["fakeclaude"], "fake-429")
    gw.policy(aliases={"chain": ["fakeai/fake-429", "fakeclaude/fake-429"]})

    with pytest.raises(openai.RateLimitError) as info:
        gw.client().chat.completions.create(model="chain", messages=HELLO)

    err = info.value
    assert err.status_code == 429
    assert err.response.headers["retry-after"] == "1"
    assert err.body["code"] == "rate_limited"
    assert "fakeai/fake-429" in err.message and "fakeclaude/fake-429" in err.message
    assert backoffs and all(b >= 1.0 for b in backoffs)
    [row] = gw.usage(1)
    assert row.status == "error" and row.http_status == 429
    assert len(row.attempts) == 4


def test_an_upstream_400_is_returned_as_400_and_not_tried_elsewhere(gw):
    add_model(gw.providers["fakeai"], "fake-400")
    add_model(gw.providers["fakeclaude"], "fake-ok")
    gw.policy(aliases={"chain": ["fakeai/fake-400", "fakeclaude/fake-ok"]})

    with pytest.raises(openai.BadRequestError) as info:
        gw.client().chat.completions.create(model="chain", messages=HELLO)

    assert info.value.status_code == 400
    assert "Invalid value for 'temperature'" in info.value.message
    assert len(gw.fakes["openai"].calls) == 1  # not retried either
    assert gw.fakes["anthropic"].calls == []
    [row] = gw.usage(1)
    assert row.status == "error" and row.http_status == 400 and row.fallbacks == 0
    assert [a["model"] for a in row.attempts] == ["fakeai/fake-400"]


def test_auto_falls_back_from_the_best_scored_model_to_the_next_one(gw):
    add_model(gw.providers["fakeai"], "fake-500", quality=0.95)
    add_model(gw.providers["fakeclaude"], "fake-ok", quality=0.5)
    gw.policy(objective="maximize_quality")

    resp = gw.client().chat.completions.with_raw_response.create(model="auto", messages=HELLO)

    assert resp.headers["x-aura-provider"] == "fakeclaude"
    assert resp.headers["x-aura-fallbacks"] == "1"
    assert len(gw.fakes["openai"].calls) == 2
    [row] = gw.usage(1)
    assert row.attempts[0]["model"] == "fakeai/fake-500" and row.fallbacks == 1


def test_a_named_model_falls_back_only_to_models_of_the_same_or_a_higher_tier(gw):
    add_model(gw.providers["fakeai"], "fake-500", tier="balanced")
    add_model(gw.providers["fakeclaude"], "fake-ok", tier="eco")
    add_model(gw.providers["fakegemini"], "fake-ok", tier="premium")
    gw.policy(model_fallback="any_model")

    resp = gw.client().chat.completions.with_raw_response.create(model="fake-500", messages=HELLO)

    assert resp.parse().choices[0].message.content == "fake reply: hello there world"
    assert resp.headers["x-aura-provider"] == "fakegemini"
    assert resp.headers["x-aura-fallbacks"] == "1"
    assert gw.fakes["anthropic"].calls == []  # the cheaper eco model is never a fallback
    [row] = gw.usage(1)
    assert row.provider == "fakegemini" and row.fallbacks == 1


def test_a_named_model_with_only_lower_tier_alternatives_fails_instead_of_downgrading(gw):
    add_model(gw.providers["fakeai"], "fake-500", tier="premium")
    add_model(gw.providers["fakeclaude"], "fake-ok", tier="eco")
    gw.policy(model_fallback="any_model")

    with pytest.raises(openai.InternalServerError) as info:
        gw.client().chat.completions.create(model="fake-500", messages=HELLO)

    assert info.value.status_code == 502
    assert gw.fakes["anthropic"].calls == []
    [row] = gw.usage(1)
    assert row.status == "error" and {a["model"] for a in row.attempts} == {"fakeai/fake-500"}


def test_fallbacks_stop_at_the_policys_fallback_depth(gw):
    add_model(gw.providers["fakeai"], "fake-500")
    add_model(gw.providers["fakeclaude"], "fake-500")
    add_model(gw.providers["fakegemini"], "fake-ok")
    chain = ["fakeai/fake-500", "fakeclaude/fake-500", "fakegemini/fake-ok"]
    gw.policy(aliases={"chain": chain}, fallback_depth=1)

    with pytest.raises(openai.InternalServerError):
        gw.client().chat.completions.create(model="chain", messages=HELLO)
    assert gw.fakes["gemini"].calls == []

    gw.policy(fallback_depth=2)
    resp = gw.client().chat.completions.with_raw_response.create(model="chain", messages=HELLO)
    assert resp.headers["x-aura-provider"] == "fakegemini"
    assert resp.headers["x-aura-fallbacks"] == "2"
    rows = gw.usage(2)
    assert [r.status for r in rows] == ["error", "ok"]
    assert rows[1].fallbacks == 2 and len(rows[1].attempts) == 5


def test_a_substituted_model_says_which_was_asked_for_and_why(gw):
    import httpx

    add_model(gw.providers["fakeai"], "fake-500", tier="premium")
    add_model(gw.providers["fakeclaude"], "fake-ok", tier="premium")
    gw.policy(model_fallback="any_model")
    resp = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json={"model": "fake-500", "messages": HELLO},
        headers={"authorization": f"Bearer {gw.plaintext}"},
    )
    assert resp.status_code == 200
    assert resp.headers["x-aura-requested-model"] == "fake-500"
    assert resp.headers["x-aura-model"] == "fake-ok"
    failed = "fakeai/fake-500: provider error (HTTP 500, provider code 'server_error')"
    assert resp.headers["x-aura-fallback-reason"] == f"{failed}; {failed}"  # two attempts


def test_the_same_model_elsewhere_answers_with_the_reason_in_a_header(gw):
    import httpx

    add_model(gw.providers["fakeai"], "shared-model")
    add_model(gw.providers["fakeclaude"], "shared-model")
    gw.fakes["openai"].set_default("fake-503")
    gw.fakes["anthropic"].set_default("fake-ok")
    gw.policy(aliases={"pair": ["fakeai/shared-model", "fakeclaude/shared-model"]})
    resp = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json={"model": "pair", "messages": HELLO},
        headers={"authorization": f"Bearer {gw.plaintext}"},
    )
    assert resp.status_code == 200
    assert resp.headers["x-aura-model"] == "shared-model"
    assert resp.headers["x-aura-provider"] == "fakeclaude"
    assert resp.headers["x-aura-requested-model"] == "pair"
    assert resp.headers["x-aura-fallback-reason"].startswith(
        "fakeai/shared-model: provider error (HTTP 503, provider code 'server_error')"
    )


def test_a_request_answered_by_its_first_choice_has_no_fallback_reason(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    raw = gw.client().chat.completions.with_raw_response.create(model="fake-ok", messages=HELLO)
    assert raw.headers["x-aura-requested-model"] == "fake-ok"
    assert "x-aura-fallback-reason" not in raw.headers
