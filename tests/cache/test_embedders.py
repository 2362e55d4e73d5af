"""The embedder registry: every local embedder loads from its installed wheel with the
network blocked (tests/plugin.py blocks every non-loopback address) and returns unit
vectors of its dimension; the provider embedder goes through AURA's adapter to a fake
OpenAI-compatible upstream on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import numpy as np
import pytest

from aura.http import aclose_client
from routing.cache.embedders import (
    DEFAULT_EMBEDDER,
    NEEDS_TARGET,
    REGISTRY,
    THRESHOLDS,
    Embedder,
    get_embedder,
    provider_embedder,
)
from routing.cache.embedders.provider import ProviderEmbedder
from routing.providers import get_adapter
from routing.providers.base import ProviderTarget, Timeouts
from tests.fakes.openai import FakeOpenAI

LOCAL = sorted(set(REGISTRY) - NEEDS_TARGET)
TEXTS = [
    "How do I reverse a list in Python?",
    "whats the way to reverse a python list",
    "Is 7 prime?",
]


@pytest.fixture(scope="module", params=LOCAL)
def local(request: pytest.FixtureRequest) -> Embedder:
    return get_embedder(request.param)  # once per process: the registry caches instances


def test_each_local_embedder_loads_offline_and_returns_unit_vectors(local: Embedder) -> None:
    vectors = np.asarray(local.embed(TEXTS))

    assert vectors.shape == (len(TEXTS), local.dim)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert local.embed(TEXTS[:1]) == local.embed(TEXTS[:1])  # deterministic
    # A paraphrase is closer than an unrelated question.
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_the_registry_names_each_embedder_once_and_caches_it() -> None:
    assert DEFAULT_EMBEDDER in LOCAL
    assert get_embedder(DEFAULT_EMBEDDER) is get_embedder(DEFAULT_EMBEDDER)
    assert {get_embedder(n).name for n in LOCAL} == set(LOCAL)
    with pytest.raises(KeyError, match="known embedders"):
        get_embedder("nope")
    with pytest.raises(ValueError, match="needs a target"):
        get_embedder("provider")


def test_every_embedder_has_a_measured_threshold_and_the_default_is_the_lookups() -> None:
    from routing.cache.semantic import DEFAULT_THRESHOLD

    assert set(THRESHOLDS) == set(REGISTRY)
    assert THRESHOLDS[DEFAULT_EMBEDDER] == DEFAULT_THRESHOLD


def test_minilm_reproduces_the_reference_vector() -> None:
    # sentence-transformers/all-MiniLM-L6-v2 on "This is an example sentence" (model card).
    vector = get_embedder("minilm").embed(["This is an example sentence"])[0]
    assert np.allclose(
        vector[:5], [0.0676569, 0.0634959, 0.0487131, 0.0793050, 0.0374480], atol=1e-5
    )


def test_an_empty_text_gives_the_zero_vector_not_nan() -> None:
    vector = get_embedder("wordllama").embed([""])[0]
    assert not any(vector)


@pytest.fixture(scope="module")
def openai_fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server  # type: ignore[misc]
    server.stop()


@pytest.fixture
async def _fresh_client() -> AsyncIterator[None]:
    yield
    await aclose_client()


def _target(server: FakeOpenAI) -> ProviderTarget:
    return ProviderTarget(
        base_url=server.base_url, api_key="sk-test", upstream_model="fake-embed",
        timeouts=Timeouts(connect=2.0, first_byte=5.0, total=10.0),
    )  # fmt: skip


@pytest.mark.anyio
async def test_the_provider_embedder_calls_the_adapter_and_normalises(
    openai_fake: FakeOpenAI, _fresh_client: None
) -> None:
    embedder = provider_embedder(
        adapter=get_adapter("openai"), target=_target(openai_fake), dim=16, request_dimensions=True
    )

    vectors = np.asarray(await embedder.aembed(TEXTS))

    assert isinstance(embedder, ProviderEmbedder) and embedder.name == "provider:fake-embed@16"
    assert openai_fake.last_call.json == {"model": "fake-embed", "input": TEXTS, "dimensions": 16}
    assert vectors.shape == (3, 16)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.anyio
async def test_the_provider_embedder_refuses_vectors_of_another_size(
    openai_fake: FakeOpenAI, _fresh_client: None
) -> None:
    # The fake answers 8 dimensions when none are asked for.
    embedder = provider_embedder(adapter=get_adapter("openai"), target=_target(openai_fake), dim=16)
    with pytest.raises(ValueError, match="expected 16 dimensions"):
        await embedder.aembed(TEXTS)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
