"""Static validation of routing/data/catalog.json (no database, no Django)."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import pytest

CATALOG_PATH = Path(__file__).resolve().parents[2] / "routing" / "data" / "catalog.json"

QUALITY_CATEGORIES = {
    "code",
    "math",
    "reasoning",
    "extraction",
    "summarization",
    "creative",
    "chat",
}
ALLOWED_CAPABILITIES = {"chat", "tools", "vision", "json", "streaming", "embeddings"}
ALLOWED_KINDS = {"chat", "embeddings"}
ALLOWED_TIERS = {"eco", "balanced", "premium"}
ALLOWED_WIRE_FORMATS = {"openai", "anthropic", "gemini", "ollama"}

TOP_LEVEL_KEYS = {"version", "generated_at", "quality_method", "providers", "models"}
PROVIDER_KEYS = {"slug", "name", "wire_format", "default_base_url", "is_local"}
MODEL_KEYS = {
    "provider",
    "model_id",
    "display_name",
    "kind",
    "input_price_per_mtok",
    "output_price_per_mtok",
    "context_window",
    "max_output_tokens",
    "capabilities",
    "tier",
    "is_local",
    "price_source",
    "price_source_date",
    "notes",
}


@pytest.fixture(scope="module")
def catalog() -> dict[str, Any]:
    with CATALOG_PATH.open(encoding="utf-8") as fh:
        data = json.load(fh)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def providers(catalog: dict[str, Any]) -> list[dict[str, Any]]:
    return catalog["providers"]


@pytest.fixture(scope="module")
def models(catalog: dict[str, Any]) -> list[dict[str, Any]]:
    return catalog["models"]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _mid(model: dict[str, Any]) -> str:
    return f"{model.get('provider')}/{model.get('model_id')}"


def test_file_is_utf8_with_two_space_indent() -> None:
    raw = CATALOG_PATH.read_bytes().decode("utf-8")
    lines = raw.splitlines()
    assert lines[0] == "{"
    assert lines[1].startswith('  "') and not lines[1].startswith("   ")


def test_top_level_keys(catalog: dict[str, Any]) -> None:
    assert TOP_LEVEL_KEYS <= catalog.keys()
    assert catalog["version"] == 1
    dt.date.fromisoformat(catalog["generated_at"])
    assert isinstance(catalog["quality_method"], str) and catalog["quality_method"].strip()
    assert isinstance(catalog["providers"], list) and catalog["providers"]
    assert isinstance(catalog["models"], list) and catalog["models"]


def test_provider_schema(providers: list[dict[str, Any]]) -> None:
    slugs = [p["slug"] for p in providers]
    assert len(slugs) == len(set(slugs)), "duplicate provider slug"
    for p in providers:
        missing = PROVIDER_KEYS - p.keys()
        assert not missing, f"provider {p.get('slug')} missing {missing}"
        assert isinstance(p["slug"], str) and p["slug"]
        assert p["wire_format"] in ALLOWED_WIRE_FORMATS, p["slug"]
        assert p["default_base_url"].startswith(("https://", "http://")), p["slug"]
        assert isinstance(p["is_local"], bool), p["slug"]
        if not p["is_local"]:
            assert p["default_base_url"].startswith("https://"), p["slug"]


def test_model_schema(models: list[dict[str, Any]]) -> None:
    for model in models:
        missing = MODEL_KEYS - model.keys()
        assert not missing, f"{_mid(model)} missing {missing}"
        assert isinstance(model["model_id"], str) and model["model_id"].strip(), _mid(model)
        assert isinstance(model["display_name"], str) and model["display_name"].strip()
        assert model["kind"] in ALLOWED_KINDS, _mid(model)
        assert model["tier"] in ALLOWED_TIERS, _mid(model)
        assert isinstance(model["is_local"], bool), _mid(model)
        assert isinstance(model["notes"], str), _mid(model)
        assert isinstance(model.get("aliases", []), list), _mid(model)


def test_model_ids_unique_per_provider(models: list[dict[str, Any]]) -> None:
    keys = [(m["provider"], m["model_id"]) for m in models]
    assert len(keys) == len(set(keys)), "duplicate (provider, model_id)"


def test_model_count_reasonable(models: list[dict[str, Any]]) -> None:
    assert 35 <= len(models) <= 50


def test_prices_are_non_negative_numbers(models: list[dict[str, Any]]) -> None:
    for model in models:
        for key in ("input_price_per_mtok", "output_price_per_mtok"):
            assert _is_number(model[key]), f"{_mid(model)} {key} not a number"
            assert model[key] >= 0, f"{_mid(model)} {key} negative"
        if "cached_input_price_per_mtok" in model:
            cached = model["cached_input_price_per_mtok"]
            assert _is_number(cached) and cached >= 0, _mid(model)
            assert cached <= model["input_price_per_mtok"], f"{_mid(model)} cache dearer than input"


def test_token_limits(models: list[dict[str, Any]]) -> None:
    for model in models:
        ctx, max_out = model["context_window"], model["max_output_tokens"]
        assert isinstance(ctx, int) and not isinstance(ctx, bool) and ctx > 0, _mid(model)
        assert isinstance(max_out, int) and not isinstance(max_out, bool), _mid(model)
        assert 0 <= max_out <= ctx, _mid(model)
        if model["kind"] == "chat":
            assert max_out > 0, _mid(model)


def test_every_model_provider_exists(
    providers: list[dict[str, Any]], models: list[dict[str, Any]]
) -> None:
    slugs = {p["slug"] for p in providers}
    for model in models:
        assert model["provider"] in slugs, _mid(model)


def test_every_provider_has_a_model(
    providers: list[dict[str, Any]], models: list[dict[str, Any]]
) -> None:
    used = {m["provider"] for m in models}
    for p in providers:
        assert p["slug"] in used, f"provider {p['slug']} has no models"


def test_every_provider_has_a_chat_model(
    providers: list[dict[str, Any]], models: list[dict[str, Any]]
) -> None:
    chat_providers = {m["provider"] for m in models if m["kind"] == "chat"}
    for p in providers:
        assert p["slug"] in chat_providers, f"provider {p['slug']} has no chat model"


def test_capabilities_allowed(models: list[dict[str, Any]]) -> None:
    for model in models:
        caps = model["capabilities"]
        assert isinstance(caps, list) and caps, _mid(model)
        assert len(caps) == len(set(caps)), f"{_mid(model)} duplicate capability"
        unknown = set(caps) - ALLOWED_CAPABILITIES
        assert not unknown, f"{_mid(model)} unknown capabilities {unknown}"


def test_kind_matches_capabilities(models: list[dict[str, Any]]) -> None:
    for model in models:
        caps = set(model["capabilities"])
        if model["kind"] == "embeddings":
            assert "embeddings" in caps, _mid(model)
            assert model["output_price_per_mtok"] == 0, _mid(model)
        else:
            assert "chat" in caps, _mid(model)
            assert "embeddings" not in caps, _mid(model)


def test_chat_models_have_full_quality(models: list[dict[str, Any]]) -> None:
    for model in models:
        if model["kind"] != "chat":
            continue
        quality = model.get("quality")
        assert isinstance(quality, dict), f"{_mid(model)} missing quality"
        assert set(quality) == QUALITY_CATEGORIES, f"{_mid(model)} quality keys {set(quality)}"
        for cat, value in quality.items():
            assert _is_number(value), f"{_mid(model)} {cat} not a number"
            assert 0.0 <= value <= 1.0, f"{_mid(model)} {cat}={value} out of range"


def test_aliases_unique_and_do_not_clash(models: list[dict[str, Any]]) -> None:
    model_ids = {m["model_id"] for m in models}
    seen: dict[str, str] = {}
    for model in models:
        for alias in model.get("aliases", []):
            assert isinstance(alias, str) and alias.strip(), _mid(model)
            assert alias not in seen, f"alias {alias!r} on {_mid(model)} and {seen.get(alias)}"
            assert alias not in model_ids, f"alias {alias!r} clashes with a model_id"
            seen[alias] = _mid(model)


def test_dates_parse(catalog: dict[str, Any], models: list[dict[str, Any]]) -> None:
    generated = dt.date.fromisoformat(catalog["generated_at"])
    for model in models:
        date = dt.date.fromisoformat(model["price_source_date"])
        assert date <= generated, f"{_mid(model)} price date after generated_at"
        assert date.year >= 2024, f"{_mid(model)} price date implausibly old"


def test_price_sources_are_urls(models: list[dict[str, Any]]) -> None:
    for model in models:
        assert model["price_source"].startswith("https://"), _mid(model)


def test_local_models_are_free_and_consistent(
    providers: list[dict[str, Any]], models: list[dict[str, Any]]
) -> None:
    local_providers = {p["slug"] for p in providers if p["is_local"]}
    for model in models:
        assert model["is_local"] == (model["provider"] in local_providers), _mid(model)
        if model["is_local"]:
            assert model["input_price_per_mtok"] == 0, _mid(model)
            assert model["output_price_per_mtok"] == 0, _mid(model)


def test_hosted_chat_models_are_priced(models: list[dict[str, Any]]) -> None:
    for model in models:
        if not model["is_local"]:
            assert model["input_price_per_mtok"] > 0, _mid(model)
            if model["kind"] == "chat":
                assert model["output_price_per_mtok"] > 0, _mid(model)
