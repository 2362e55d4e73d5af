"""OpenAI chat.completions, and every endpoint that speaks it (Together, Groq, Mistral,
DeepSeek, OpenRouter, vLLM...): only `base_url` differs.

This is the hot path, so the body is passed through with a shallow copy: no translation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from aura.http import open_stream, request_json
from routing.providers.base import (
    Adapter,
    Completion,
    ProviderError,
    ProviderTarget,
    Usage,
    classify_status,
    cut_stream_error,
    error_body_message,
    iter_sse,
    loads_object,
    redact,
)


def usage_from_openai(raw: Any) -> Usage | None:
    if not isinstance(raw, Mapping):
        return None
    try:
        prompt = int(raw.get("prompt_tokens") or 0)
        completion = int(raw.get("completion_tokens") or 0)
        details = raw.get("prompt_tokens_details")
        cached = int(details.get("cached_tokens") or 0) if isinstance(details, Mapping) else 0
    except (TypeError, ValueError):
        return None
    return Usage(prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached)


def openai_error(
    status: int, headers: Mapping[str, str], body: bytes, api_key: str | None
) -> ProviderError:
    text, data = error_body_message(body)
    code: str | None = None
    etype: str | None = None
    if data is not None:
        # OpenAI nests under "error"; vLLM/Mistral-style servers put the fields at top level.
        err = data.get("error", data)
        if isinstance(err, Mapping):
            text = str(err.get("message") or err.get("detail") or data.get("detail") or "")
            raw_code = err.get("code")
            code = str(raw_code) if raw_code is not None else None
            etype = str(err["type"]) if err.get("type") is not None else None
        else:
            text = str(err)
    text = redact(text or "(no message)", api_key)
    lowered = text.lower()
    context_length = code == "context_length_exceeded" or (
        status == 400 and ("context length" in lowered or "context_length" in lowered)
    )
    content_filter = code in ("content_filter", "content_policy_violation")
    quota = "insufficient_quota" in (code, etype)
    return classify_status(
        status,
        text,
        headers=headers,
        provider_code=code or etype,
        context_length=context_length,
        content_filter=content_filter,
        # Out of credit: waiting will not help, only another provider will.
        retryable_override=False if quota else None,
    )


def _stream_payload_error(chunk: Mapping[str, Any], api_key: str | None) -> ProviderError:
    err = chunk.get("error")
    message = str(err.get("message") if isinstance(err, Mapping) else err)
    code = err.get("code") if isinstance(err, Mapping) else None
    return ProviderError(
        f"upstream stream error: {redact(message, api_key)}",
        kind="server",
        retryable=True,
        provider_code=str(code) if code is not None else None,
    )


class OpenAIAdapter(Adapter):
    kind = "openai"

    def url(self, target: ProviderTarget, operation: str) -> str:
        return f"{target.base_url.rstrip('/')}/{operation}"

    def headers(self, target: ProviderTarget) -> dict[str, str]:
        headers = {"accept": "application/json"}
        if target.api_key:
            headers["authorization"] = f"Bearer {target.api_key}"
        headers.update(target.extra_headers)
        return headers

    def body(self, target: ProviderTarget, request: Mapping[str, Any]) -> dict[str, Any]:
        body = dict(request)
        body["model"] = target.upstream_model
        return body

    async def complete(self, target: ProviderTarget, request: Mapping[str, Any]) -> Completion:
        body = self.body(target, request)
        body.pop("stream", None)
        body.pop("stream_options", None)
        resp = await request_json(
            "POST",
            self.url(target, "chat/completions"),
            headers=self.headers(target),
            json=body,
            timeouts=target.timeouts,
        )
        if resp.status >= 400:
            raise openai_error(resp.status, resp.headers, resp.body, target.api_key)
        data = loads_object(resp.body, f"{self.kind} response")
        if not isinstance(data.get("choices"), list):
            raise ProviderError(
                f"{self.kind} response has no choices", kind="malformed", retryable=True
            )
        return Completion(body=data, usage=usage_from_openai(data.get("usage")))

    async def stream(
        self, target: ProviderTarget, request: Mapping[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        body = self.body(target, request)
        body["stream"] = True
        options = dict(body.get("stream_options") or {})
        options["include_usage"] = True
        body["stream_options"] = options
        async with open_stream(
            "POST",
            self.url(target, "chat/completions"),
            headers=self.headers(target),
            json=body,
            timeouts=target.timeouts,
        ) as resp:
            if resp.status >= 400:
                raise openai_error(resp.status, resp.headers, await resp.read(), target.api_key)
            async for _event, data in iter_sse(resp.lines()):
                if data == "[DONE]":
                    return
                chunk = loads_object(data, f"{self.kind} stream event")
                if "error" in chunk and not chunk.get("choices"):
                    raise _stream_payload_error(chunk, target.api_key)
                yield chunk
        raise cut_stream_error(self.kind)

    async def embed(self, target: ProviderTarget, request: Mapping[str, Any]) -> dict[str, Any]:
        resp = await request_json(
            "POST",
            self.url(target, "embeddings"),
            headers=self.headers(target),
            json=self.body(target, request),
            timeouts=target.timeouts,
        )
        if resp.status >= 400:
            raise openai_error(resp.status, resp.headers, resp.body, target.api_key)
        data = loads_object(resp.body, f"{self.kind} embeddings response")
        if not isinstance(data.get("data"), list):
            raise ProviderError(
                f"{self.kind} embeddings response has no data", kind="malformed", retryable=True
            )
        return data

    async def health(self, target: ProviderTarget) -> None:
        resp = await request_json(
            "GET",
            self.url(target, "models"),
            headers=self.headers(target),
            timeouts=target.timeouts,
        )
        if resp.status >= 400:
            raise openai_error(resp.status, resp.headers, resp.body, target.api_key)
