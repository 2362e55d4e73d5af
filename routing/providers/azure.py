"""Azure OpenAI: the OpenAI wire format behind per-deployment URLs and an `api-key` header."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from routing.providers.base import ProviderTarget
from routing.providers.openai import OpenAIAdapter

DEFAULT_API_VERSION = "2024-10-21"  # GA version that supports stream_options.include_usage


class AzureOpenAIAdapter(OpenAIAdapter):
    kind = "azure"

    def url(self, target: ProviderTarget, operation: str) -> str:
        base = target.base_url.rstrip("/")
        version = quote(target.api_version or DEFAULT_API_VERSION, safe="")
        if operation == "models":
            return f"{base}/openai/models?api-version={version}"
        deployment = quote(target.upstream_model, safe="")
        return f"{base}/openai/deployments/{deployment}/{operation}?api-version={version}"

    def headers(self, target: ProviderTarget) -> dict[str, str]:
        headers = {"accept": "application/json"}
        if target.api_key:
            headers["api-key"] = target.api_key
        headers.update(target.extra_headers)
        return headers

    def body(self, target: ProviderTarget, request: Mapping[str, Any]) -> dict[str, Any]:
        # The deployment in the URL picks the model; Azure ignores a `model` field.
        body = dict(request)
        body.pop("model", None)
        return body
