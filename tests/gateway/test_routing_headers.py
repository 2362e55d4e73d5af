"""The routing hints a client sends on /v1 (README, "Using the gateway") and the cost header
of a stream, through the real gateway.

Fake token rules (tests/fakes/scenarios.py): prompt = 10 + words of every message text,
completion = words of "fake reply: <last user words>", cut to max_tokens.
"""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

from tests.gateway.conftest import add_model
from tests.gateway.http import http

MTOK = Decimal(1_000_000)
BODY = {"model": "auto", "max_tokens": 4, "messages": [{"role": "user", "content": "a b c d e"}]}
# The fake bills BODY 15 prompt tokens (10 + 5 words) and 4 completion tokens (max_tokens).
PREMIUM_COST = (Decimal(15) * 2 + Decimal(4) * 80) / MTOK  # $2 in / $80 out per 1M
CHEAP_COST = (Decimal(15) * 2 + Decimal(4) * 8) / MTOK  # $2 in / $8 out per 1M
# The worst cases the engine compares with x-aura-max-cost: AURA's local prompt count of
# BODY is 10 (3 reply priming + 3 message + 1 role + 3 for five one-letter words), plus
# max_tokens at the output price.
PREMIUM_WORST = (Decimal(10) * 2 + Decimal(4) * 80) / MTOK  # $0.00034
CHEAP_WORST = (Decimal(10) * 2 + Decimal(4) * 8) / MTOK  # $0.000052


def post(gw, body=BODY, **headers: str) -> httpx.Response:
    return http().post(
        f"{gw.url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {gw.plaintext}", **headers},
    )


@pytest.fixture
def premium_and_cheap(gw) -> None:
    add_model(gw.providers["fakeai"], "premium", quality=0.95, price_out=Decimal(80))
    add_model(gw.providers["fakeclaude"], "cheap", quality=0.5)


@pytest.mark.parametrize(
    ("policy_objective", "header", "served", "cost"),
    [
        ("maximize_quality", "minimize_cost", "fakeclaude", CHEAP_COST),
        ("minimize_cost", "maximize_quality", "fakeai", PREMIUM_COST),
    ],
)
def test_the_objective_header_overrides_the_tenants_objective_for_that_request(
    gw, premium_and_cheap, policy_objective, header, served, cost
):
    gw.policy(objective=policy_objective)
    default = post(gw)
    hinted = post(gw, **{"x-aura-objective": header})
    assert default.status_code == hinted.status_code == 200, hinted.text
    assert default.headers["x-aura-provider"] != served
    assert hinted.headers["x-aura-provider"] == served
    _, row = gw.usage(2)
    assert row.provider == served and row.cost_usd == cost


def test_an_unknown_objective_header_is_a_400_naming_it_and_goes_nowhere(gw, premium_and_cheap):
    resp = post(gw, **{"x-aura-objective": "fastest"})
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "x-aura-objective"
    assert gw.fakes["openai"].calls == [] and gw.fakes["anthropic"].calls == []
    [row] = gw.usage(1)
    assert (row.status, row.http_status, row.cost_usd) == ("error", 400, 0)


def test_the_max_cost_header_keeps_the_request_to_models_whose_worst_case_fits(
    gw, premium_and_cheap
):
    gw.policy(objective="maximize_quality")
    assert post(gw).headers["x-aura-provider"] == "fakeai"  # the premium model, uncapped
    # Between the two worst cases: only the cheap model fits.
    capped = post(gw, **{"x-aura-max-cost": str(CHEAP_WORST * 2)})
    assert capped.status_code == 200
    assert capped.headers["x-aura-provider"] == "fakeclaude"
    # A cap at exactly the premium worst case lets it through (the cap is inclusive).
    assert post(gw, **{"x-aura-max-cost": str(PREMIUM_WORST)}).headers["x-aura-provider"] == (
        "fakeai"
    )
    # Below both: nothing may be called, and the client is told why.
    refused = post(gw, **{"x-aura-max-cost": str(CHEAP_WORST / 2)})
    assert refused.status_code == 402
    assert "exceeds cap" in refused.json()["error"]["message"]
    rows = gw.usage(4)
    assert [(r.provider, r.cost_usd) for r in rows[:3]] == [
        ("fakeai", PREMIUM_COST),
        ("fakeclaude", CHEAP_COST),
        ("fakeai", PREMIUM_COST),
    ]
    assert (rows[3].status, rows[3].http_status, rows[3].cost_usd) == ("error", 402, 0)
    assert len(gw.fakes["openai"].calls) == 2 and len(gw.fakes["anthropic"].calls) == 1


def test_the_session_header_pins_each_session_to_one_model_and_spreads_sessions(gw):
    for name in ("s1", "s2", "s3", "s4"):
        add_model(gw.providers["fakeai"], name)
    gw.policy(strategy="consistent_hash", fallback_depth=0)
    sessions = [f"user-{i}" for i in range(12)]
    first = {s: post(gw, **{"x-aura-session-id": s}).headers["x-aura-model"] for s in sessions}
    again = {s: post(gw, **{"x-aura-session-id": s}).headers["x-aura-model"] for s in sessions}
    assert again == first  # affinity: a session keeps its model
    assert len(set(first.values())) > 1  # and sessions do not all land on the top model
    # What the fake was asked for is what the headers said.
    asked = [c.json["model"] for c in gw.fakes["openai"].calls]
    assert asked == [first[s] for s in sessions] * 2


def test_a_stream_announces_its_worst_case_cost_as_an_upper_bound(gw):
    add_model(gw.providers["fakeai"], "fake-ok")
    add_model(gw.providers["fakeai"], "fake-overbill")
    # 40 five-letter words: AURA counts 3 + 4 + 42 (0.6 + 5 * 0.09 per word, rounded) = 49
    # prompt tokens and reserves them with its 25 % margin: 62. Output is reserved up to
    # where the stream is cut: ceil(4 * 1.15) + 4 = 9 tokens. At $2 in / $8 out per 1M:
    worst = (Decimal(62) * 2 + Decimal(9) * 8) / MTOK  # $0.000196
    text = " ".join(["hello"] * 40)
    for model in ("fake-ok", "fake-overbill"):
        body = {
            "model": model,
            "stream": True,
            "max_tokens": 4,
            "messages": [{"role": "user", "content": text}],
        }
        with http().stream(
            "POST",
            f"{gw.url}/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {gw.plaintext}"},
        ) as resp:
            assert resp.status_code == 200
            assert resp.headers["x-aura-cost-estimate"] == "upper-bound"
            assert Decimal(resp.headers["x-aura-cost-usd"]) == worst
            events = [line for line in resp.iter_lines() if line.startswith("data: ")]
        assert events[-1] == "data: [DONE]"
        assert json.loads(events[-2][6:])["choices"][0]["finish_reason"] == "length"
    plain, overbilled = gw.usage(2)
    # The fake bills 10 + 40 prompt tokens and 4 completion tokens.
    assert plain.cost_usd == (Decimal(50) * 2 + Decimal(4) * 8) / MTOK
    # A provider that ignores max_tokens is cut at the cap and charged what was delivered.
    assert overbilled.error_code == "max_tokens_enforced" and overbilled.cost_estimated
    costs = [plain.cost_usd, overbilled.cost_usd]
    assert all(0 < c <= worst for c in costs), costs
