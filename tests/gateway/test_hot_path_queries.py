"""The warm hot path does no database query (DESIGN §3, step 1).

The live gateway runs in a thread of this process, and its cold-path queries run in
sync_to_async / executor threads, so queries are counted at the class level of Django's
cursor wrapper (every thread, every connection). The usage writer uses its own psycopg
connection, outside any request, and is not counted.

Expected queries of a warm chat completion, streamed or not: none.
(A cold one does: the API key lookup (1), the routing context (policy, catalog, endpoints
+ their served models, credentials: 5), and the once-a-minute last_used_at update (1).)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db.backends.utils import CursorWrapper

import tenants.auth
from routing.gateway import context
from routing.gateway.context import cache
from tenants.auth import api_key_cache_forget
from tenants.models import ApiKey
from tests.gateway.conftest import add_model

HI = [{"role": "user", "content": "hi"}]


class Counter:
    def __init__(self) -> None:
        self.queries: list[str] = []
        self.contexts_built = 0
        self.keys_loaded = 0


@pytest.fixture
def counter(monkeypatch: pytest.MonkeyPatch) -> Counter:
    c = Counter()
    real_execute = CursorWrapper._execute  # type: ignore[attr-defined]
    real_executemany = CursorWrapper._executemany  # type: ignore[attr-defined]
    real_build = context.build_context
    real_load = tenants.auth._load

    def execute(self: CursorWrapper, sql: str, *args: Any) -> Any:
        c.queries.append(sql)
        return real_execute(self, sql, *args)

    def executemany(self: CursorWrapper, sql: str, *args: Any) -> Any:
        c.queries.append(sql)
        return real_executemany(self, sql, *args)

    def build(tenant_id: int) -> Any:
        c.contexts_built += 1
        return real_build(tenant_id)

    def load(prefix: str) -> Any:
        c.keys_loaded += 1
        return real_load(prefix)

    monkeypatch.setattr(CursorWrapper, "_execute", execute)
    monkeypatch.setattr(CursorWrapper, "_executemany", executemany)
    monkeypatch.setattr(context, "build_context", build)
    monkeypatch.setattr(tenants.auth, "_load", load)
    return c


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def warm_up(gw) -> None:
    gw.client().chat.completions.create(model="fake-ok", messages=HI)
    gw.usage(1)
    # The first request touches last_used_at off the hot path; let it land first.
    wait_for(lambda: ApiKey.objects.get(pk=gw.key.pk).last_used_at is not None)


@pytest.fixture
def warm(gw) -> None:
    add_model(gw.providers["fakeai"], "fake-ok")
    warm_up(gw)


def test_a_warm_chat_completion_does_no_query(gw, warm, counter):
    completion = gw.client().chat.completions.create(model="fake-ok", messages=HI)

    assert completion.choices[0].message.content == "fake reply: hi"
    assert counter.queries == []
    assert (counter.contexts_built, counter.keys_loaded) == (0, 0)
    assert len(gw.fakes["openai"].calls) == 2
    gw.usage(2)


def test_a_warm_streamed_completion_does_no_query(gw, warm, counter):
    stream = gw.client().chat.completions.create(model="fake-ok", messages=HI, stream=True)

    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == (
        "fake reply: hi"
    )
    assert counter.queries == []
    assert (counter.contexts_built, counter.keys_loaded) == (0, 0)
    gw.usage(2)


def test_the_counter_sees_the_cold_path_queries(gw, warm, counter):
    # Guards the two tests above: with the caches dropped, the same request does query.
    cache.clear()
    api_key_cache_forget()

    gw.client().chat.completions.create(model="fake-ok", messages=HI)

    assert (counter.contexts_built, counter.keys_loaded) == (1, 1)
    assert any("tenants_apikey" in q for q in counter.queries)
    assert any("routing_catalogmodel" in q for q in counter.queries)
    gw.usage(2)
