"""Calls to tenant-controlled URLs connect only to the public address that was checked."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from aura import http
from routing.providers.base import ProviderError, Timeouts


def build(url: str, answers: list[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    async def fake_getaddrinfo(host: str, port: int, **kw: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers]

    async def run() -> Any:
        http._pins.clear()
        monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", fake_getaddrinfo)
        token = http.public_only.set(True)
        try:
            return await http._request("POST", url, b"{}", {}, Timeouts())
        finally:
            http.public_only.reset(token)

    return asyncio.run(run())


def test_the_request_goes_to_the_checked_address_with_the_original_host_and_sni(monkeypatch):
    request = build("https://llm.example.test/v1/chat", ["93.184.216.34"], monkeypatch)
    assert request.url.host == "93.184.216.34"
    assert request.headers["host"] == "llm.example.test"
    assert request.extensions["sni_hostname"] == "llm.example.test"


@pytest.mark.parametrize("address", ["10.0.0.5", "127.0.0.1", "169.254.169.254", "::1"])
def test_a_name_resolving_to_an_internal_address_is_refused(monkeypatch, address):
    with pytest.raises(ProviderError) as info:
        build("https://llm.example.test/v1/chat", ["93.184.216.34", address], monkeypatch)
    assert not info.value.retryable and "tenant endpoints must be public" in info.value.message


def test_without_the_flag_nothing_is_resolved_or_rewritten():
    async def run() -> Any:
        return await http._request("POST", "http://127.0.0.1:9/x", b"{}", {}, Timeouts())

    assert asyncio.run(run()).url.host == "127.0.0.1"
