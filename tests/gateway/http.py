"""One HTTP client for tests that call the live gateway many times: ``httpx.post`` builds a
client per request, which costs about 0.1 s (mostly loading the CA bundle)."""

from __future__ import annotations

import functools

import httpx


@functools.cache
def http() -> httpx.Client:
    return httpx.Client(timeout=30)
