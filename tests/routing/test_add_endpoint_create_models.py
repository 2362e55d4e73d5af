"""`add_endpoint --create-models` describes the models it creates honestly: prices,
capabilities, kind, context window and max output as told, and nothing more."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from routing.models import CatalogModel, Provider, ProviderEndpoint


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=out)
    return out.getvalue()


@pytest.fixture
def vllm(db: Any) -> Provider:
    return Provider.objects.create(slug="vllm", name="vLLM", wire_format="openai")


def add(*extra: str, model: str = "llama") -> str:
    return run(
        "add_endpoint",
        "vllm",
        "gpu1",
        "--base-url",
        "http://10.0.0.5:8000/v1",
        "--no-api-key",
        "--model",
        model,
        "--create-models",
        *extra,
    )


def test_it_creates_a_model_with_the_prices_capabilities_and_limits_given(vllm: Provider) -> None:
    out = add(
        "--input-price",
        "0.15",
        "--output-price",
        "0.6",
        "--capabilities",
        "chat,streaming,tools",
        "--context-window",
        "131072",
        "--max-output",
        "8192",
    )

    model = CatalogModel.objects.get(provider=vllm, model_id="llama")
    assert model.kind == "chat"
    assert model.input_price_per_mtok == Decimal("0.15")
    assert model.output_price_per_mtok == Decimal("0.6")
    assert model.capabilities == ["chat", "streaming", "tools"]
    assert (model.context_window, model.max_output_tokens) == (131072, 8192)
    assert (
        "Created catalog model vllm/llama: chat, capabilities chat, streaming, tools, "
        "$0.15 in / $0.6 out per 1M tokens, context 131072, max output 8192"
    ) in out
    assert "zero price" not in out


def test_an_embeddings_model_claims_embeddings_and_produces_no_output_tokens(
    vllm: Provider,
) -> None:
    add("--kind", "embeddings", "--input-price", "0.02", model="bge-m3")

    model = CatalogModel.objects.get(model_id="bge-m3")
    assert (model.kind, model.capabilities, model.max_output_tokens) == (
        "embeddings",
        ["embeddings"],
        0,
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--input-price", "-1"], r"--input-price: expects a price of 0 or more, got '-1'"),
        (["--output-price", "cheap"], r"--output-price: expects USD per 1M tokens"),
        (["--output-price", "NaN"], r"--output-price: expects a price of 0 or more"),
        (["--input-price", "0.0000001"], r"input price has more than 6 decimal places"),
        (["--input-price", "10000000"], r"input price must be between 0 and 999999\.999999"),
        (["--capabilities", "chat,telepathy"], r"--capabilities: expects a comma-separated"),
        (["--kind", "image"], r"--kind: invalid choice: 'image'"),
        (["--kind", "embeddings", "--capabilities", "embeddings,tools"], r"cannot claim tools"),
        (["--capabilities", "chat,embeddings"], r"a chat model cannot claim embeddings"),
        (["--context-window", "0"], r"context window must be at least 1 token"),
        (["--context-window", "4096", "--max-output", "8192"], r"between 0 and the context"),
        (["--max-output", "0"], r"a chat model needs max output tokens above 0"),
        (["--context-window", "lots"], r"--context-window: expects a number of tokens"),
    ],
)
def test_a_bad_model_description_is_refused_with_a_clear_error_and_creates_nothing(
    vllm: Provider, extra: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        add(*extra)
    assert not CatalogModel.objects.exists()
    assert not ProviderEndpoint.objects.exists()


def test_model_options_without_create_models_are_refused(vllm: Provider) -> None:
    CatalogModel.objects.create(provider=vllm, model_id="llama")
    with pytest.raises(CommandError, match="--input-price describe new models"):
        run(
            "add_endpoint",
            "vllm",
            "gpu1",
            "--base-url",
            "http://10.0.0.5/v1",
            "--model",
            "llama",
            "--input-price",
            "1",
        )
    assert not ProviderEndpoint.objects.exists()


def test_a_model_already_in_the_catalog_is_left_as_it_is_and_the_output_says_so(
    vllm: Provider,
) -> None:
    CatalogModel.objects.create(
        provider=vllm, model_id="llama", input_price_per_mtok=Decimal("1"), capabilities=["chat"]
    )

    out = add("--input-price", "5", "--capabilities", "chat,tools")

    model = CatalogModel.objects.get(model_id="llama")
    assert (model.input_price_per_mtok, model.capabilities) == (Decimal("1"), ["chat"])
    assert "Already in the catalog, left as they are: llama" in out
