"""Usage records survive what happens to the key between the request and the batch write."""

from __future__ import annotations

import threading
import time

import httpx

from tenants.models import ApiKey
from tenants.services import api_key_create
from tests.gateway.conftest import add_model

HI = [{"role": "user", "content": "hi"}]


def test_a_record_whose_key_was_deleted_mid_request_is_kept_and_blocks_no_other(gw):
    add_model(gw.providers["fakeai"], "fake-slow-first-byte")  # the fake waits 0.3 s
    add_model(gw.providers["fakeai"], "fake-ok")
    doomed, doomed_plaintext = api_key_create(tenant=gw.tenant, name="doomed")
    answers: list[httpx.Response] = []

    def slow_request() -> None:
        with httpx.Client(timeout=10) as client:
            answers.append(
                client.post(
                    f"{gw.url}/v1/chat/completions",
                    json={"model": "fake-slow-first-byte", "messages": HI},
                    headers={"authorization": f"Bearer {doomed_plaintext}"},
                )
            )

    thread = threading.Thread(target=slow_request)
    thread.start()
    deadline = time.monotonic() + 5
    while not gw.fakes["openai"].calls and time.monotonic() < deadline:
        time.sleep(0.01)
    ApiKey.objects.filter(pk=doomed.pk).delete()  # while the upstream is still thinking
    thread.join(10)
    assert answers and answers[0].status_code == 200

    later = gw.client().chat.completions.create(model="fake-ok", messages=HI)

    assert later.choices[0].message.content == "fake reply: hi"
    rows = gw.usage(2)
    assert len(rows) == 2, "a refused record held back the ones after it"
    by_model = {r.model: r for r in rows}
    assert by_model["fake-slow-first-byte"].api_key_id is None  # kept, key unlinked
    assert by_model["fake-slow-first-byte"].request_id == answers[0].headers["x-aura-request-id"]
    assert by_model["fake-ok"].api_key_id == gw.key.pk


def _post(gw, body, path="/v1/chat/completions", **headers) -> httpx.Response:
    with httpx.Client(timeout=20) as client:
        return client.post(
            gw.url + path, json=body, headers={"authorization": f"Bearer {gw.plaintext}", **headers}
        )


def test_every_refused_or_failed_request_leaves_a_record_with_its_status_and_code(gw):
    from decimal import Decimal

    from billing.models import Budget
    from routing.gateway.context import cache
    from routing.models import ProviderEndpoint

    add_model(gw.providers["fakeai"], "fake-ok", context_window=50)
    add_model(gw.providers["fakeai"], "fake-500")
    add_model(gw.providers["fakeai"], "fake-timeout")
    add_model(gw.providers["fakeai"], "fake-pricey", price_in=Decimal(1000))
    ProviderEndpoint.objects.filter(provider=gw.providers["fakeai"]).update(
        first_byte_timeout=0.3, max_retries=0
    )
    gw.policy(rate_limits={"key_rpm": 8}, fallback_depth=0)  # all but the 400 count
    Budget.objects.create(tenant=gw.tenant, period="request", limit_usd=Decimal("0.05"))
    cache.clear()
    long = [{"role": "user", "content": "word " * 200}]
    responses = [
        _post(gw, {"model": "fake-ok"}),  # 400: no messages
        _post(gw, {"model": "no-such-model", "messages": HI}),  # 404
        _post(gw, {"model": "fake-ok", "messages": long}),  # 413: too long for it
        _post(gw, {"model": "fake-pricey", "messages": long}),  # 402: per-request budget
        _post(gw, {"model": "fake-500", "messages": HI}),  # 502
        _post(gw, {"model": "fake-timeout", "messages": HI}),  # 504
        _post(gw, {"model": "fake-ok", "messages": HI}),  # 200
        _post(gw, {"model": "fake-ok", "messages": HI}),  # 200
        _post(gw, {"model": "fake-ok", "messages": HI}),  # 200
        _post(gw, {"model": "fake-ok", "messages": HI}),  # 429: the 10th in a minute
    ]
    with httpx.Client(timeout=10) as client:
        responses.append(
            client.get(
                f"{gw.url}/v1/models/nope", headers={"authorization": f"Bearer {gw.plaintext}"}
            )
        )
    statuses = [r.status_code for r in responses]
    assert statuses == [400, 404, 413, 402, 502, 504, 200, 200, 200, 429, 404]
    rows = {r.request_id: r for r in gw.usage(len(responses))}
    assert len(rows) == len(responses), "every request is recorded, exactly once"
    for resp in responses:
        row = rows[resp.headers["x-aura-request-id"]]
        assert row.http_status == resp.status_code
        if resp.status_code == 200:
            assert row.status == "ok" and row.error_code == ""
        else:
            assert row.status == "error"
            err = resp.json()["error"]
            assert row.error_code == (err["code"] or err["type"]), resp.text
            assert row.cost_usd == 0
    kinds = {rows[r.headers["x-aura-request-id"]].kind for r in responses}
    assert kinds == {"chat", "models"}
    assert rows[responses[1].headers["x-aura-request-id"]].model == "no-such-model"


def test_a_nul_in_an_upstream_error_does_not_drop_the_record_of_a_billed_fallback(gw):
    add_model(gw.providers["fakeai"], "fake-500-nul", tier="premium")
    add_model(gw.providers["fakeclaude"], "fake-ok", tier="premium")
    gw.policy(model_fallback="any_model")
    responses = [_post(gw, {"model": "fake-500-nul", "messages": HI}) for _ in range(6)]
    assert [r.status_code for r in responses] == [200] * 6
    rows = gw.usage(6)
    assert len(rows) == 6
    fell_back = [row for row in rows if row.fallbacks]
    assert fell_back, "the NUL-answering model was tried first"
    for row in rows:
        assert row.status == "ok" and row.cost_usd > 0
    for row in fell_back:
        failed = row.attempts[0]
        assert failed["ok"] is False and failed["status"] == 500
        assert "\x00" not in str(failed)
