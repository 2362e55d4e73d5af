"""The provider adapter contract and the helpers every adapter shares.

An adapter speaks one wire format. It takes an OpenAI chat.completions body and a
`ProviderTarget`, calls the upstream through `aura.http`, and hands back OpenAI-shaped
objects. Errors are always `ProviderError`, classified so the executor can decide whether to
retry, fall back or give up without knowing anything about the provider.
"""

from __future__ import annotations

import abc
import base64
import binascii
import email.utils
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote, quote_plus

from aura.http import ERROR_KINDS, ProviderError, Timeouts

__all__ = ["ERROR_KINDS", "ProviderError", "Timeouts"]  # defined by the HTTP seam, used by adapters


@dataclass(frozen=True, slots=True)
class ProviderTarget:
    """Everything an adapter needs to call one endpoint for one model."""

    base_url: str  # "https://api.openai.com/v1", "https://api.anthropic.com", ...
    api_key: str | None
    upstream_model: str  # the provider's own model id / Azure deployment name
    api_version: str | None = None  # Azure api-version, anthropic-version override
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    timeouts: Timeouts = Timeouts()  # noqa: RUF009 - frozen, shared safely
    max_output: int | None = None  # model's max output tokens (Anthropic needs max_tokens)

    def __repr__(self) -> str:
        # The dataclass repr would print the key into logs and tracebacks.
        return (
            f"ProviderTarget(base_url={self.base_url!r}, upstream_model={self.upstream_model!r}, "
            f"api_key={'***' if self.api_key else None})"
        )


@dataclass(slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_openai(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }
        if self.cached_tokens:
            out["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        return out


@dataclass(slots=True)
class Completion:
    body: dict[str, Any]  # a complete OpenAI `chat.completion` object
    usage: Usage | None  # None when the upstream reported none


class Adapter(abc.ABC):
    kind: ClassVar[str]

    @abc.abstractmethod
    async def complete(self, target: ProviderTarget, request: Mapping[str, Any]) -> Completion:
        """Run one non-streamed chat completion.

        `request` is the client's validated OpenAI chat.completions body; its `model` is
        ignored in favour of `target.upstream_model`. Returns the answer as an OpenAI
        `chat.completion` object plus the upstream-reported usage (None when absent).
        Raises ProviderError for every failure, classified by kind and retryability.
        """

    @abc.abstractmethod
    def stream(
        self, target: ProviderTarget, request: Mapping[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield OpenAI `chat.completion.chunk` dicts. Always asks the upstream for usage
        (OpenAI: stream_options.include_usage=true). The final yielded chunk carries `usage`
        (OpenAI shape) when the upstream reported it. Raises ProviderError before the first
        chunk for HTTP errors, and ProviderError(kind="malformed"/"connection"/...) mid-stream
        if the stream is cut or garbled — never ends silently on a cut stream (a stream that
        ends without the provider's terminal event, e.g. no `data: [DONE]` / `message_stop`,
        is a cut stream).

        Callers that stop early must `aclose()` the generator so the connection is released.
        """

    async def embed(self, target: ProviderTarget, request: Mapping[str, Any]) -> dict[str, Any]:
        """Return an OpenAI `list` of embeddings with usage."""
        raise ProviderError(
            f"{self.kind} does not support embeddings", kind="bad_request", retryable=False
        )

    async def health(self, target: ProviderTarget) -> None:
        """Cheap liveness probe (e.g. GET models list); raises ProviderError when unhealthy."""
        raise NotImplementedError


# --- helpers shared by adapters -------------------------------------------------------------

FINISH_LENGTH = "length"


_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
# Shapes of well-known provider keys, redacted even when they are not the key we sent.
_KEY_SHAPES = re.compile(
    r"\b(?:sk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}|AIza[0-9A-Za-z_-]{30,}|gsk_[A-Za-z0-9]{20,}"
    r"|xai-[A-Za-z0-9]{20,}|aura-[a-z0-9]{6,16}\.[A-Za-z0-9_-]{16,})"
)


def redact(text: str, api_key: str | None) -> str:
    """``text`` without ``api_key`` in any form an upstream might echo it in: as sent,
    URL-encoded, inside base64 (e.g. Basic auth, at any offset), and without anything
    shaped like a well-known provider key."""
    if api_key and len(api_key) >= 4:
        for form in {api_key, quote(api_key, safe=""), quote_plus(api_key)}:
            text = text.replace(form, "***")
        text = _BASE64_RUN.sub(lambda m: _redact_base64(m.group(0), api_key), text)
    return _KEY_SHAPES.sub("***", text)


def _redact_base64(run: str, api_key: str) -> str:
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            decoded = decode(run + "=" * (-len(run) % 4))
        except (ValueError, binascii.Error):
            continue
        if api_key.encode() in decoded:
            return "***"
    return run


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait, from `retry-after-ms` (OpenAI) or `retry-after` (seconds or date)."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(float(raw_ms) / 1000.0, 0.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def classify_status(
    status: int,
    message: str,
    *,
    headers: Mapping[str, str],
    provider_code: str | None = None,
    context_length: bool = False,
    content_filter: bool = False,
    retryable_override: bool | None = None,
    retry_after: float | None = None,
) -> ProviderError:
    """Map an HTTP error status (plus hints the adapter read from the body) to ProviderError."""
    if retry_after is None:
        retry_after = parse_retry_after(headers)
    kind: str
    retryable: bool
    if status == 429:
        kind, retryable = "rate_limit", True
    elif status in (408, 409) or status >= 500:
        kind, retryable = "server", True
    elif status in (401, 403):
        kind, retryable = "auth", False
    elif status == 404:
        kind, retryable = "not_found", False
    elif context_length:
        kind, retryable = "context_length", False
    elif content_filter:
        kind, retryable = "content_filter", False
    else:
        kind, retryable = "bad_request", False
    if retryable_override is not None:
        retryable = retryable_override
    return ProviderError(
        f"upstream HTTP {status}: {message}"[:2000],
        kind=kind,
        status=status,
        retryable=retryable,
        retry_after=retry_after if kind in ("rate_limit", "server") else None,
        provider_code=provider_code,
    )


def loads_object(raw: bytes | str, what: str) -> dict[str, Any]:
    """json.loads that insists on an object and fails as a classified ProviderError."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ProviderError(
            f"malformed JSON in {what}: {exc}", kind="malformed", retryable=True
        ) from None
    if not isinstance(data, dict):
        raise ProviderError(f"expected a JSON object in {what}", kind="malformed", retryable=True)
    return data


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def error_body_message(body: bytes) -> tuple[str, dict[str, Any] | None]:
    """Best-effort text of an error body plus its parsed JSON (if it was a JSON object)."""
    try:
        data = json.loads(body)
    except ValueError:
        return body[:500].decode("utf-8", "replace") or "(empty body)", None
    if isinstance(data, dict):
        return "", data
    return str(data)[:500], None


def new_chunk_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def request_max_tokens(request: Mapping[str, Any]) -> int | None:
    value = request.get("max_completion_tokens")
    if value is None:
        value = request.get("max_tokens")
    return int(value) if value is not None else None


def request_stops(request: Mapping[str, Any]) -> list[str]:
    stop = request.get("stop")
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop]
    return [s for s in stop if isinstance(s, str)]


def reject_multiple_choices(request: Mapping[str, Any], kind: str) -> None:
    n = request.get("n")
    if n is not None and n != 1:
        raise ProviderError(f"{kind} does not support n={n}", kind="bad_request", retryable=False)


def text_of_content(content: Any) -> str:
    """Concatenated text of an OpenAI message content (string or list of parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for part in content:
        if isinstance(part, Mapping) and part.get("type") == "text":
            parts.append(str(part.get("text", "")))
        elif isinstance(part, str):
            parts.append(part)
    return "".join(parts)


def parse_data_url(url: str) -> tuple[str, str] | None:
    """(mime type, base64 data) of a `data:<mime>;base64,<data>` URL, else None."""
    if not url.startswith("data:"):
        return None
    header, sep, data = url[5:].partition(",")
    if not sep or not header.endswith(";base64"):
        return None
    return header[: -len(";base64")] or "application/octet-stream", data


def json_instruction(response_format: Mapping[str, Any] | None) -> str | None:
    """A system-prompt instruction for formats that lack a native JSON mode."""
    if not response_format:
        return None
    rtype = response_format.get("type")
    if rtype == "json_object":
        return "Respond with a single valid JSON object and nothing else."
    if rtype == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema", {})
        return (
            "Respond with a single valid JSON object and nothing else, matching this JSON "
            f"Schema: {dumps(schema)}"
        )
    return None


def arguments_object(arguments: Any) -> dict[str, Any]:
    """OpenAI tool-call arguments (a JSON string) as the object other formats want."""
    if isinstance(arguments, Mapping):
        return dict(arguments)
    if not arguments:
        return {}
    try:
        parsed = json.loads(arguments)
    except ValueError:
        raise ProviderError(
            "tool call arguments are not valid JSON", kind="bad_request", retryable=False
        ) from None
    if not isinstance(parsed, dict):
        raise ProviderError(
            "tool call arguments must be a JSON object", kind="bad_request", retryable=False
        )
    return parsed


@dataclass(slots=True)
class ChunkFactory:
    """Builds OpenAI chunks sharing one id/created/model, as clients expect within a stream."""

    model: str
    id: str = field(default_factory=new_chunk_id)
    created: int = field(default_factory=lambda: int(time.time()))

    def chunk(
        self,
        delta: dict[str, Any],
        finish_reason: str | None = None,
    ) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }

    def usage_chunk(self, usage: Usage) -> dict[str, Any]:
        # Same shape as OpenAI's include_usage chunk: no choices, only usage.
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage.as_openai(),
        }


def completion_body(
    *,
    model: str,
    content: str | None,
    tool_calls: list[dict[str, Any]],
    finish_reason: str,
    usage: Usage | None,
    completion_id: str | None = None,
    created: int | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    body: dict[str, Any] = {
        "id": completion_id or new_chunk_id(),
        "object": "chat.completion",
        "created": created if created is not None else int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}
        ],
    }
    if usage is not None:
        body["usage"] = usage.as_openai()
    return body


def cut_stream_error(provider: str) -> ProviderError:
    return ProviderError(
        f"{provider} stream ended without its terminal event (cut stream)",
        kind="connection",
        retryable=True,
    )


async def iter_sse(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str | None, str]]:
    """(event name, data) per server-sent event, following the SSE field rules."""
    event: str | None = None
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = None, []
            continue
        if line[0] == ":":
            continue  # comment / keep-alive
        name, _, value = line.partition(":")
        if value[:1] == " ":
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
    if data:
        # Lenient: dispatch a final event even without the trailing blank line.
        yield event, "\n".join(data)
