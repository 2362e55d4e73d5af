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
