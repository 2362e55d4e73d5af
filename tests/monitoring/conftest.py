"""Scraping /metrics in tests: the live gateway (``gw``, from tests/gateway) and a parser of
the text format that sums the samples a test asks about.

Counters are process-wide and only grow, so tests compare a scrape before and after what
they do (``Scrape.value`` differences), never absolute values.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from aura.redis import sync_client
from monitoring.scrape import HEALTH_KEY
from routing.gateway.breaker import OPEN_SET
from tests.gateway.conftest import gw  # noqa: F401  (the live gateway, for these tests too)


@dataclass
class Scrape:
    text: str = field(repr=False)
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list, repr=False)
    families: set[str] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        for family in text_string_to_metric_families(self.text):
            self.families.add(family.name)
            for s in family.samples:
                self.samples.append((s.name, dict(s.labels), s.value))

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples called ``name`` whose labels include ``labels``."""
        return sum(
            v
            for n, have, v in self.samples
            if n == name and all(have.get(k) == want for k, want in labels.items())
        )

    def has(self, name: str, **labels: str) -> bool:
        return any(
            n == name and all(have.get(k) == want for k, want in labels.items())
            for n, have, _ in self.samples
        )


def scrape(url: str, token: str | None = None) -> Scrape:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    resp = httpx.get(f"{url}/metrics", headers=headers, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    return Scrape(resp.text)


def delta(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


@pytest.fixture
def redis_state() -> Iterator[Any]:
    """The Redis keys the scrape reads (health hash, breakers' open set), emptied around
    the test."""
    client = sync_client()
    client.delete(HEALTH_KEY, OPEN_SET)
    yield client
    client.delete(HEALTH_KEY, OPEN_SET)
