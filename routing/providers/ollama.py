"""Ollama (`POST /api/chat`, NDJSON streaming; `POST /api/embed`)."""

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
    loads_object,
    new_call_id,
    parse_data_url,
    redact,
    reject_multiple_choices,
    request_max_tokens,
    request_stops,
    text_of_content,
)


def _user_message(content: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "user", "content": text_of_content(content)}
    if isinstance(content, list):
        images: list[str] = []
        for part in content:
            if part.get("type") != "image_url":
                continue
            image = part.get("image_url") or {}
            url = image if isinstance(image, str) else image.get("url", "")
            inline = parse_data_url(url)
            if inline is None:
                raise ProviderError(
                    "ollama accepts images only as base64 data URLs",
                    kind="bad_request",
                    retryable=False,
                )
            images.append(inline[1])
        if images:
            message["images"] = images
    return message


def to_ollama(
    target: ProviderTarget, request: Mapping[str, Any], *, stream: bool
) -> dict[str, Any]:
    reject_multiple_choices(request, "ollama")
    messages: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}
    for message in request.get("messages", ()):
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            messages.append({"role": "system", "content": text_of_content(content)})
        elif role == "user":
            messages.append(_user_message(content))
        elif role == "assistant":
            out: dict[str, Any] = {"role": "assistant", "content": text_of_content(content)}
            calls = []
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                call_names[str(call.get("id"))] = str(function.get("name", ""))
                arguments = arguments_object(function.get("arguments"))
                calls.append({"function": {"name": function.get("name"), "arguments": arguments}})
            if calls:
                out["tool_calls"] = calls
            messages.append(out)
        elif role == "tool":
            call_id = str(message.get("tool_call_id"))
            messages.append(
                {
                    "role": "tool",
                    "content": text_of_content(content),
                    "tool_name": call_names.get(call_id, call_id),
                }
            )

    body: dict[str, Any] = {"model": target.upstream_model, "messages": messages, "stream": stream}
    options: dict[str, Any] = {}
    max_tokens = request_max_tokens(request)
    if max_tokens is not None:
        options["num_predict"] = max_tokens
    stops = request_stops(request)
    if stops:
        options["stop"] = stops
    for key in ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty"):
        if request.get(key) is not None:
            options[key] = request[key]
    if options:
        body["options"] = options
    response_format = request.get("response_format") or {}
    if response_format.get("type") == "json_object":
        body["format"] = "json"
    elif response_format.get("type") == "json_schema":
        body["format"] = (response_format.get("json_schema") or {}).get("schema") or "json"
    tools = request.get("tools")
    if tools and request.get("tool_choice") != "none":
        # Ollama takes OpenAI-style tool definitions as they are; it has no tool_choice.
        body["tools"] = [tool for tool in tools if tool.get("type", "function") == "function"]
    return body


def usage_from_ollama(data: Mapping[str, Any]) -> Usage | None:
    if "eval_count" not in data and "prompt_eval_count" not in data:
        return None
    # Ollama omits prompt_eval_count when the whole prompt came from its KV cache.
    return Usage(
        prompt_tokens=int(data.get("prompt_eval_count") or 0),
        completion_tokens=int(data.get("eval_count") or 0),
    )


def _tool_calls(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    calls = []
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        arguments = function.get("arguments", {})
        calls.append(
            {
                "id": call.get("id") or new_call_id(),
                "type": "function",
                "function": {
                    "name": function.get("name"),
                    "arguments": arguments if isinstance(arguments, str) else dumps(arguments),
                },
            }
        )
    return calls


def _finish(done_reason: Any, has_tool_calls: bool) -> str:
    if done_reason == "length":
        return "length"
    return "tool_calls" if has_tool_calls else "stop"


def ollama_error(
    status: int, headers: Mapping[str, str], body: bytes, api_key: str | None
) -> ProviderError:
    text, data = error_body_message(body)
    if data is not None:
        err = data.get("error")
        text = str(err.get("message") if isinstance(err, Mapping) else err)
    text = redact(text or "(no message)", api_key)
    context_length = status == 400 and "context length" in text.lower()
    return classify_status(status, text, headers=headers, context_length=context_length)


class OllamaAdapter(Adapter):
    kind = "ollama"

    def _url(self, target: ProviderTarget, path: str) -> str:
        return f"{target.base_url.rstrip('/')}/api/{path}"

    def _headers(self, target: ProviderTarget) -> dict[str, str]:
        headers = {"accept": "application/json"}
        if target.api_key:
            # Plain Ollama needs no key; one configured means a proxy in front expects it.
            headers["authorization"] = f"Bearer {target.api_key}"
        headers.update(target.extra_headers)
        return headers

    async def complete(self, target: ProviderTarget, request: Mapping[str, Any]) -> Completion:
        resp = await request_json(
            "POST",
            self._url(target, "chat"),
            headers=self._headers(target),
            json=to_ollama(target, request, stream=False),
            timeouts=target.timeouts,
        )
        if resp.status >= 400:
            raise ollama_error(resp.status, resp.headers, resp.body, target.api_key)
        data = loads_object(resp.body, "ollama response")
        message = data.get("message")
        if not isinstance(message, Mapping):
            raise ProviderError("ollama response has no message", kind="malformed", retryable=True)
        calls = _tool_calls(message)
        text = str(message.get("content") or "")
        usage = usage_from_ollama(data)
        body = completion_body(
            model=str(data.get("model") or target.upstream_model),
            content=text if text or not calls else None,
            tool_calls=calls,
            finish_reason=_finish(data.get("done_reason"), bool(calls)),
            usage=usage,
        )
        return Completion(body=body, usage=usage)

    async def stream(
        self, target: ProviderTarget, request: Mapping[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        async with open_stream(
            "POST",
            self._url(target, "chat"),
            headers=self._headers(target),
            json=to_ollama(target, request, stream=True),
            timeouts=target.timeouts,
        ) as resp:
            if resp.status >= 400:
                raise ollama_error(resp.status, resp.headers, await resp.read(), target.api_key)
            factory = ChunkFactory(model=target.upstream_model)
            yield factory.chunk({"role": "assistant", "content": ""})
            tool_count = 0
            async for line in resp.lines():
                if not line.strip():
                    continue
                event = loads_object(line, "ollama stream line")
                if "error" in event:
                    raise ProviderError(
                        f"ollama stream error: {redact(str(event['error']), target.api_key)}",
                        kind="server",
                        retryable=True,
                    )
                message = event.get("message") or {}
                if message.get("content"):
                    yield factory.chunk({"content": message["content"]})
                for call in _tool_calls(message):
                    yield factory.chunk({"tool_calls": [{"index": tool_count, **call}]})
                    tool_count += 1
                if event.get("done"):
                    finish = _finish(event.get("done_reason"), tool_count > 0)
                    yield factory.chunk({}, finish_reason=finish)
                    usage = usage_from_ollama(event)
                    if usage is not None:
                        yield factory.usage_chunk(usage)
                    return
        raise cut_stream_error(self.kind)

    async def embed(self, target: ProviderTarget, request: Mapping[str, Any]) -> dict[str, Any]:
        inputs = request.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or ())
        if not all(isinstance(t, str) for t in texts):
            raise ProviderError(
                "ollama embeddings take text input only", kind="bad_request", retryable=False
            )
        body: dict[str, Any] = {"model": target.upstream_model, "input": texts}
        if request.get("dimensions"):
            body["dimensions"] = request["dimensions"]
        resp = await request_json(
            "POST",
            self._url(target, "embed"),
            headers=self._headers(target),
            json=body,
            timeouts=target.timeouts,
        )
        if resp.status >= 400:
            raise ollama_error(resp.status, resp.headers, resp.body, target.api_key)
        data = loads_object(resp.body, "ollama embeddings response")
        embeddings = data.get("embeddings")
        if not isinstance(embeddings, list) or len(embeddings) != len(texts):
            raise ProviderError(
                "ollama embeddings response does not match the input",
                kind="malformed",
                retryable=True,
            )
        prompt_tokens = int(data.get("prompt_eval_count") or 0)
        return {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": vector}
                for i, vector in enumerate(embeddings)
            ],
            "model": target.upstream_model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }

    async def health(self, target: ProviderTarget) -> None:
        resp = await request_json(
            "GET",
            self._url(target, "tags"),
            headers=self._headers(target),
            timeouts=target.timeouts,
        )
        if resp.status >= 400:
            raise ollama_error(resp.status, resp.headers, resp.body, target.api_key)
