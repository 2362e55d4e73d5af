"""Anthropic Messages API (`POST /v1/messages`), translated to and from the OpenAI shape."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from aura.http import open_stream, request_json
from routing.providers.base import (
    Adapter,
    ChunkFactory,
    Completion,
    ProviderError,
    ProviderTarget,
    Usage,
    arguments_object,
    classify_status,
    completion_body,
    cut_stream_error,
    dumps,
    error_body_message,
    iter_sse,
    json_instruction,
    loads_object,
    parse_data_url,
    redact,
    reject_multiple_choices,
    request_max_tokens,
    request_stops,
    text_of_content,
)

DEFAULT_VERSION = "2023-06-01"
# Used only when neither the request nor the catalog gives a limit: the API demands one.
FALLBACK_MAX_TOKENS = 4096

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# Error `type`s Anthropic may send inside a 200 stream, by our kind and retryability.
STREAM_ERROR_KINDS = {
    "overloaded_error": ("server", True),
    "api_error": ("server", True),
    "rate_limit_error": ("rate_limit", True),
    "timeout_error": ("timeout", True),
    "authentication_error": ("auth", False),
    "permission_error": ("auth", False),
    "not_found_error": ("not_found", False),
}


def _image_block(url: str) -> dict[str, Any]:
    inline = parse_data_url(url)
    if inline is not None:
        media_type, data = inline
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    return {"type": "image", "source": {"type": "url", "url": url}}


def _user_blocks(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content:
        ptype = part.get("type")
        if ptype == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif ptype == "image_url":
            image = part.get("image_url") or {}
            url = image if isinstance(image, str) else image.get("url", "")
            blocks.append(_image_block(url))
        else:
            raise ProviderError(
                f"anthropic does not support content part {ptype!r}",
                kind="bad_request",
                retryable=False,
            )
    return blocks


def _append(messages: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    if not blocks:
        return
    # Tool results come as separate OpenAI messages but must share one Anthropic user turn.
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": blocks})


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    result: dict[str, Any] | None
    if choice is None:
        result = {"type": "auto"} if parallel is False else None
    elif choice == "auto":
        result = {"type": "auto"}
    elif choice == "required":
        result = {"type": "any"}
    elif choice == "none":
        result = {"type": "none"}
    elif isinstance(choice, Mapping):
        result = {"type": "tool", "name": (choice.get("function") or {}).get("name", "")}
    else:
        result = None
    if result is not None and parallel is False and result["type"] != "none":
        result["disable_parallel_tool_use"] = True
    return result


def to_anthropic(target: ProviderTarget, request: Mapping[str, Any]) -> dict[str, Any]:
    reject_multiple_choices(request, "anthropic")
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for message in request.get("messages", ()):
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system.append(text_of_content(content))
        elif role == "user":
            _append(messages, "user", _user_blocks(content))
        elif role == "assistant":
            blocks: list[dict[str, Any]] = []
            text = text_of_content(content)
            if text:
                blocks.append({"type": "text", "text": text})
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.get("id"),
                        "name": function.get("name"),
                        "input": arguments_object(function.get("arguments")),
                    }
                )
            _append(messages, "assistant", blocks)
        elif role == "tool":
            result = {
                "type": "tool_result",
                "tool_use_id": message.get("tool_call_id"),
                "content": text_of_content(content),
            }
            _append(messages, "user", [result])
    instruction = json_instruction(request.get("response_format"))
    if instruction:
        system.append(instruction)

    max_tokens = request_max_tokens(request) or target.max_output or FALLBACK_MAX_TOKENS
    body: dict[str, Any] = {
        "model": target.upstream_model,
        "messages": messages,
        "max_tokens": max_tokens,
    }
    if system:
        body["system"] = "\n\n".join(s for s in system if s)
    stops = request_stops(request)
    if stops:
        body["stop_sequences"] = stops
    if request.get("temperature") is not None:
        # OpenAI allows 0..2, Anthropic 0..1.
        body["temperature"] = min(float(request["temperature"]), 1.0)
    if request.get("top_p") is not None:
        body["top_p"] = request["top_p"]
    tools = request.get("tools")
    if tools:
        body["tools"] = [
            {
                "name": tool["function"]["name"],
                "description": tool["function"].get("description", ""),
                "input_schema": tool["function"].get("parameters")
                or {"type": "object", "properties": {}},
            }
            for tool in tools
            if tool.get("type", "function") == "function"
        ]
        choice = _tool_choice(request.get("tool_choice"), request.get("parallel_tool_calls"))
        if choice is not None:
            body["tool_choice"] = choice
    if isinstance(request.get("user"), str):
        body["metadata"] = {"user_id": request["user"]}
    return body


def usage_from_anthropic(raw: Any) -> Usage | None:
    if not isinstance(raw, Mapping) or "input_tokens" not in raw:
        return None
    cached = int(raw.get("cache_read_input_tokens") or 0)
    created = int(raw.get("cache_creation_input_tokens") or 0)
    # Anthropic's input_tokens excludes cache reads and writes; OpenAI's prompt_tokens does not.
    return Usage(
        prompt_tokens=int(raw["input_tokens"] or 0) + cached + created,
        completion_tokens=int(raw.get("output_tokens") or 0),
        cached_tokens=cached,
    )


def from_anthropic(data: Mapping[str, Any]) -> Completion:
    content = data.get("content")
    if not isinstance(content, list):
        raise ProviderError("anthropic response has no content", kind="malformed", retryable=True)
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in content:
        if block.get("type") == "text":
            texts.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            tool_calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": dumps(block.get("input"))},
                }
            )
    usage = usage_from_anthropic(data.get("usage"))
    text = "".join(texts)
    body = completion_body(
        model=str(data.get("model", "")),
        content=text if text or not tool_calls else None,
        tool_calls=tool_calls,
        finish_reason=FINISH_REASONS.get(str(data.get("stop_reason")), "stop"),
        usage=usage,
        completion_id=f"chatcmpl-{data['id']}" if data.get("id") else None,
    )
    return Completion(body=body, usage=usage)


def anthropic_error(
    status: int, headers: Mapping[str, str], body: bytes, api_key: str | None
) -> ProviderError:
    text, data = error_body_message(body)
    etype: str | None = None
    if data is not None:
        err = data.get("error")
        if isinstance(err, Mapping):
            text = str(err.get("message") or "")
            etype = str(err.get("type")) if err.get("type") else None
    text = redact(text or "(no message)", api_key)
    lowered = text.lower()
    context_length = status == 400 and (
        "prompt is too long" in lowered or "context limit" in lowered or "context window" in lowered
    )
    return classify_status(
        status, text, headers=headers, provider_code=etype, context_length=context_length
    )


class AnthropicAdapter(Adapter):
    kind = "anthropic"

    def _url(self, target: ProviderTarget, path: str) -> str:
        base = target.base_url.rstrip("/")
        if not base.endswith("/v1"):
            base += "/v1"
        return f"{base}/{path}"

    def _headers(self, target: ProviderTarget) -> dict[str, str]:
        headers = {
            "accept": "application/json",
            "anthropic-version": target.api_version or DEFAULT_VERSION,
        }
        if target.api_key:
            headers["x-api-key"] = target.api_key
        headers.update(target.extra_headers)
        return headers

    async def complete(self, target: ProviderTarget, request: Mapping[str, Any]) -> Completion:
        resp = await request_json(
            "POST",
            self._url(target, "messages"),
            headers=self._headers(target),
            json=to_anthropic(target, request),
            timeouts=target.timeouts,
        )
        if resp.status >= 400:
            raise anthropic_error(resp.status, resp.headers, resp.body, target.api_key)
        return from_anthropic(loads_object(resp.body, "anthropic response"))

    async def stream(
        self, target: ProviderTarget, request: Mapping[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        body = to_anthropic(target, request)
        body["stream"] = True
        async with open_stream(
            "POST",
            self._url(target, "messages"),
            headers=self._headers(target),
            json=body,
            timeouts=target.timeouts,
        ) as resp:
            if resp.status >= 400:
                raise anthropic_error(resp.status, resp.headers, await resp.read(), target.api_key)
            factory = ChunkFactory(model=target.upstream_model)
            usage: Usage | None = None
            finish = "stop"
            tool_index: dict[int, int] = {}  # Anthropic block index -> OpenAI tool_calls index
            async for _event, data in iter_sse(resp.lines()):
                event = loads_object(data, "anthropic stream event")
                etype = event.get("type")
                if etype == "content_block_delta":
                    delta = event.get("delta") or {}
                    if delta.get("type") == "text_delta":
                        yield factory.chunk({"content": delta.get("text", "")})
                    elif delta.get("type") == "input_json_delta":
                        index = tool_index.get(int(event.get("index", -1)))
                        if index is not None:
                            arguments = delta.get("partial_json", "")
                            yield factory.chunk(
                                {
                                    "tool_calls": [
                                        {"index": index, "function": {"arguments": arguments}}
                                    ]
                                }
                            )
                elif etype == "message_start":
                    message = event.get("message") or {}
                    if message.get("id"):
                        factory.id = f"chatcmpl-{message['id']}"
                    factory.model = str(message.get("model") or factory.model)
                    usage = usage_from_anthropic(message.get("usage"))
                    yield factory.chunk({"role": "assistant", "content": ""})
                elif etype == "content_block_start":
                    block = event.get("content_block") or {}
                    if block.get("type") == "tool_use":
                        index = len(tool_index)
                        tool_index[int(event.get("index", -1))] = index
                        call = {
                            "index": index,
                            "id": block.get("id"),
                            "type": "function",
                            "function": {"name": block.get("name"), "arguments": ""},
                        }
                        yield factory.chunk({"tool_calls": [call]})
                elif etype == "message_delta":
                    delta = event.get("delta") or {}
                    if delta.get("stop_reason"):
                        finish = FINISH_REASONS.get(str(delta["stop_reason"]), "stop")
                    usage = _merge_delta_usage(usage, event.get("usage"))
                elif etype == "message_stop":
                    yield factory.chunk({}, finish_reason=finish)
                    if usage is not None:
                        yield factory.usage_chunk(usage)
                    return
                elif etype == "error":
                    raise _stream_error(event.get("error"), target.api_key)
                # ping, content_block_stop and unknown future events carry nothing we need.
        raise cut_stream_error(self.kind)

    async def health(self, target: ProviderTarget) -> None:
        resp = await request_json(
            "GET",
            self._url(target, "models?limit=1"),
            headers=self._headers(target),
            timeouts=target.timeouts,
        )
        if resp.status >= 400:
            raise anthropic_error(resp.status, resp.headers, resp.body, target.api_key)


def _merge_delta_usage(usage: Usage | None, raw: Any) -> Usage | None:
    # message_delta usage is cumulative; input counts come from message_start.
    if not isinstance(raw, Mapping):
        return usage
    if usage is None:
        return usage_from_anthropic(raw)
    if raw.get("output_tokens") is not None:
        usage.completion_tokens = int(raw["output_tokens"])
    return usage


def _stream_error(err: Any, api_key: str | None) -> ProviderError:
    etype = str(err.get("type")) if isinstance(err, Mapping) else "api_error"
    message = str(err.get("message")) if isinstance(err, Mapping) else str(err)
    kind, retryable = STREAM_ERROR_KINDS.get(etype, ("bad_request", False))
    return ProviderError(
        f"anthropic stream error ({etype}): {redact(message, api_key)}",
        kind=kind,
        retryable=retryable,
        provider_code=etype,
    )
