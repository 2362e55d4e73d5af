from __future__ import annotations

import asyncio

import pytest

from aura.http import aclose_client, get_client, open_stream, request_json
from routing.providers.base import ProviderError, Timeouts
from tests.fakes.server import FakeUpstream

pytestmark = pytest.mark.anyio

T = Timeouts(connect=1, first_byte=2, total=5)


async def test_one_client_per_loop_without_environment_proxies(_fresh_client: None) -> None:
    client = get_client()

    assert get_client() is client
    assert client.trust_env is False
    await aclose_client()
    assert get_client() is not client


def test_a_client_is_never_shared_between_event_loops() -> None:
    clients: list[object] = []

    async def grab() -> None:
        clients.append(get_client())

    async def grab_and_close() -> None:
        clients.append(get_client())
        await aclose_client()

    asyncio.run(grab())
    asyncio.run(grab_and_close())

    assert clients[0] is not clients[1]


async def test_any_status_is_returned_not_raised(
    fake_servers: dict[str, FakeUpstream], _fresh_client: None
) -> None:
    server = fake_servers["ollama"]
    server.reset()
    server.set_script(["fake-503"])

    response = await request_json("GET", server.base_url + "/api/tags", headers={}, timeouts=T)

    assert response.status == 503
    assert response.headers["content-type"] == "application/json"
    assert b"busy" in response.body


async def test_stream_lines_arrive_decoded(
    fake_servers: dict[str, FakeUpstream], _fresh_client: None
) -> None:
    server = fake_servers["ollama"]
    server.reset()
    body = {"model": "m", "messages": [{"role": "user", "content": "a b"}]}

    async with open_stream(
        "POST", server.base_url + "/api/chat", headers={}, json=body, timeouts=T
    ) as resp:
        lines = [line async for line in resp.lines()]

    assert resp.status == 200
    assert len(lines) == 5  # "fake ", "reply: ", "a ", "b", then the done line
    assert '"done": true' in lines[-1]


async def test_an_unroutable_url_is_a_connection_error(_fresh_client: None) -> None:
    with pytest.raises(ProviderError) as info:
        await request_json("GET", "ftp://127.0.0.1/x", headers={}, timeouts=T)

    assert (info.value.kind, info.value.retryable) == ("connection", False)
