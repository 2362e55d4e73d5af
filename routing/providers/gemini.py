"""Google Gemini API (`generateContent` / `streamGenerateContent?alt=sse`)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

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
    new_call_id,
    parse_data_url,
    redact,
    reject_multiple_choices,
    request_max_tokens,
    request_stops,
    text_of_content,
)

FILTERED = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}
)
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")


def _finish(reason: Any, has_tool_calls: bool) -> str:
    if reason == "MAX_TOKENS":
        return "length"
    if reason in FILTERED:
        return "content_filter"
    # Gemini reports STOP after a function call; OpenAI clients look for tool_calls.
    return "tool_calls" if has_tool_calls else "stop"


def _user_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for part in content:
        ptype = part.get("type")
        if ptype == "text":
            parts.append({"text": part.get("text", "")})
        elif ptype == "image_url":
            image = part.get("image_url") or {}
            url = image if isinstance(image, str) else image.get("url", "")
            inline = parse_data_url(url)
            if inline is not None:
                parts.append({"inlineData": {"mimeType": inline[0], "data": inline[1]}})
            else:
                parts.append({"fileData": {"mimeType": "image/*", "fileUri": url}})
        else:
            raise ProviderError(
                f"gemini does not support content part {ptype!r}",
                kind="bad_request",
                retryable=False,
            )
    return parts


def _tool_response(content: Any) -> dict[str, Any]:
    # functionResponse.response must be an object; wrap anything else.
    text = text_of_content(content)
    try:
        parsed = json.loads(text)
    except ValueError:
        return {"content": text}
    return parsed if isinstance(parsed, dict) else {"content": parsed}


def _append(contents: list[dict[str, Any]], role: str, parts: list[dict[str, Any]]) -> None:
    if not parts:
        return
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def to_gemini(request: Mapping[str, Any]) -> dict[str, Any]:
    reject_multiple_choices(request, "gemini")
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}  # functionResponse needs the name, OpenAI gives only the id
    for message in request.get("messages", ()):
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system.append(text_of_content(content))
        elif role == "user":
            _append(contents, "user", _user_parts(content))
        elif role == "assistant":
            parts: list[dict[str, Any]] = []
            text = text_of_content(content)
            if text:
                parts.append({"text": text})
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                name = str(function.get("name", ""))
                call_names[str(call.get("id"))] = name
                args = arguments_object(function.get("arguments"))
                parts.append({"functionCall": {"name": name, "args": args}})
            _append(contents, "model", parts)
        elif role == "tool":
            call_id = str(message.get("tool_call_id"))
            name = call_names.get(call_id) or str(message.get("name") or call_id)
            response = {"name": name, "response": _tool_response(content)}
            _append(contents, "user", [{"functionResponse": response}])

    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": [{"text": "\n\n".join(s for s in system if s)}]}

    config: dict[str, Any] = {}
    stops = request_stops(request)
    if stops:
        config["stopSequences"] = stops
    max_tokens = request_max_tokens(request)
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    for src, dst in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        if request.get(src) is not None:
            config[dst] = request[src]
    response_format = request.get("response_format") or {}
    if response_format.get("type") == "json_object":
        config["responseMimeType"] = "application/json"
    elif response_format.get("type") == "json_schema":
        config["responseMimeType"] = "application/json"
        schema = (response_format.get("json_schema") or {}).get("schema")
        if schema:
            # responseJsonSchema takes standard JSON Schema, as OpenAI clients write it.
            config["responseJsonSchema"] = schema
        else:
            body.setdefault("systemInstruction", {"parts": []})["parts"].append(
                {"text": json_instruction(response_format)}
            )
    if config:
        body["generationConfig"] = config

    tools = request.get("tools")
    if tools:
        declarations = []
        for tool in tools:
            if tool.get("type", "function") != "function":
                continue
            function = tool["function"]
            declaration: dict[str, Any] = {
                "name": function["name"],
                "description": function.get("description", ""),
            }
            if function.get("parameters"):
                declaration["parametersJsonSchema"] = function["parameters"]
            declarations.append(declaration)
        body["tools"] = [{"functionDeclarations": declarations}]
        choice = request.get("tool_choice")
        mode = {"auto": "AUTO", "required": "ANY", "none": "NONE"}.get(str(choice))
        if isinstance(choice, Mapping):
            name = (choice.get("function") or {}).get("name", "")
            body["toolConfig"] = {
                "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}
            }
        elif mode:
            body["toolConfig"] = {"functionCallingConfig": {"mode": mode}}
    return body


def usage_from_gemini(raw: Any) -> Usage | None:
    if not isinstance(raw, Mapping) or "promptTokenCount" not in raw:
        return None
    # Thinking tokens are billed as output, so they count as completion tokens.
    completion = int(raw.get("candidatesTokenCount") or 0) + int(raw.get("thoughtsTokenCount") or 0)
    return Usage(
        prompt_tokens=int(raw["promptTokenCount"] or 0),
        completion_tokens=completion,
        cached_tokens=int(raw.get("cachedContentTokenCount") or 0),
    )


def _split_parts(candidate: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in (candidate.get("content") or {}).get("parts") or ():
        if "text" in part and not part.get("thought"):
            texts.append(str(part["text"]))
        elif "functionCall" in part:
            call = part["functionCall"]
            calls.append(
                {
                    "id": call.get("id") or new_call_id(),
                    "type": "function",
                    "function": {
                        "name": call.get("name"),
                        "arguments": dumps(call.get("args", {})),
                    },
                }
            )
    return "".join(texts), calls


def from_gemini(data: Mapping[str, Any], model: str) -> Completion:
    usage = usage_from_gemini(data.get("usageMetadata"))
    candidates = data.get("candidates")
    if not candidates:
        if (data.get("promptFeedback") or {}).get("blockReason"):
            body = completion_body(
                model=model, content="", tool_calls=[], finish_reason="content_filter", usage=usage
            )
            return Completion(body=body, usage=usage)
        raise ProviderError("gemini response has no candidates", kind="malformed", retryable=True)
    candidate = candidates[0]
    text, calls = _split_parts(candidate)
    body = completion_body(
        model=str(data.get("modelVersion") or model),
        content=text if text or not calls else None,
        tool_calls=calls,
        finish_reason=_finish(candidate.get("finishReason"), bool(calls)),
        usage=usage,
        completion_id=f"chatcmpl-{data['responseId']}" if data.get("responseId") else None,
    )
    return Completion(body=body, usage=usage)


def _retry_delay(data: Mapping[str, Any] | None) -> float | None:
    if not data:
        return None
    for detail in (data.get("error") or {}).get("details") or ():
        if isinstance(detail, Mapping) and "retryDelay" in detail:
            match = _DURATION.match(str(detail["retryDelay"]))
            if match:
                return float(match.group(1))
    return None


def gemini_error(
    status: int, headers: Mapping[str, str], body: bytes, api_key: str | None
) -> ProviderError:
    text, data = error_body_message(body)
    code: str | None = None
    if data is not None:
        err = data.get("error")
        if isinstance(err, Mapping):
            text = str(err.get("message") or "")
            code = str(err.get("status")) if err.get("status") else None
        elif isinstance(err, str):
            text = err
    text = redact(text or "(no message)", api_key)
    if status == 400 and (
        "API_KEY_INVALID" in body.decode("utf-8", "replace") or "API key" in text
    ):
        # Gemini answers a bad key with 400 INVALID_ARGUMENT, but it is an auth failure.
        return ProviderError(
            f"upstream HTTP {status}: {text}",
            kind="auth",
            status=status,
            retryable=False,
            provider_code=code,
        )
    context_length = status == 400 and "exceeds the maximum number of tokens" in text
    retry_after = _retry_delay(data) if status == 429 else None
    return classify_status(
        status,
        text,
        headers=headers,
        provider_code=code,
        context_length=context_length,
        retry_after=retry_after,
    )


class GeminiAdapter(Adapter):
    kind = "gemini"

    def _base(self, target: ProviderTarget) -> str:
        base = target.base_url.rstrip("/")
        last = urlsplit(base).path.rsplit("/", 1)[-1]
        if last not in ("v1", "v1beta", "v1alpha"):
            base += "/v1beta"
        return base

    def _model_url(self, target: ProviderTarget, method: str) -> str:
        model = target.upstream_model.removeprefix("models/")
        return f"{self._base(target)}/models/{quote(model, safe='')}:{method}"

    def _headers(self, target: ProviderTarget) -> dict[str, str]:
        headers = {"accept": "application/json"}
        if target.api_key:
            headers["x-goog-api-key"] = target.api_key
        headers.update(target.extra_headers)
        return headers

    async def complete(self, target: ProviderTarget, request: Mapping[str, Any]) -> Completion:
        resp = await request_json(
            "POST",
            self._model_url(target, "generateContent"),
            headers=self._headers(target),
            json=to_gemini(request),
            timeouts=target.timeouts,
        )
        if resp.status >= 400:
            raise gemini_error(resp.status, resp.headers, resp.body, target.api_key)
        return from_gemini(loads_object(resp.body, "gemini response"), target.upstream_model)

    async def stream(
        self, target: ProviderTarget, request: Mapping[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        async with open_stream(
            "POST",
            self._model_url(target, "streamGenerateContent") + "?alt=sse",
            headers=self._headers(target),
            json=to_gemini(request),
            timeouts=target.timeouts,
        ) as resp:
            if resp.status >= 400:
                raise gemini_error(resp.status, resp.headers, await resp.read(), target.api_key)
            factory = ChunkFactory(model=target.upstream_model)
            usage: Usage | None = None
            finish_reason: Any = None
            blocked = False
            tool_count = 0
            started = False
            async for _event, data in iter_sse(resp.lines()):
                event = loads_object(data, "gemini stream event")
                if "error" in event:
                    err = event["error"]
                    message = str(err.get("message") if isinstance(err, Mapping) else err)
                    raise ProviderError(
                        f"gemini stream error: {redact(message, target.api_key)}",
                        kind="server",
                        retryable=True,
                    )
                if not started:
                    started = True
                    if event.get("responseId"):
                        factory.id = f"chatcmpl-{event['responseId']}"
                    factory.model = str(event.get("modelVersion") or factory.model)
                    yield factory.chunk({"role": "assistant", "content": ""})
                usage = usage_from_gemini(event.get("usageMetadata")) or usage
                candidates = event.get("candidates") or ()
                if not candidates and (event.get("promptFeedback") or {}).get("blockReason"):
                    blocked = True
                for candidate in candidates[:1]:
                    text, calls = _split_parts(candidate)
                    if text:
                        yield factory.chunk({"content": text})
                    for call in calls:
                        # Gemini sends each call whole; one OpenAI delta carries all of it.
                        yield factory.chunk({"tool_calls": [{"index": tool_count, **call}]})
                        tool_count += 1
                    if candidate.get("finishReason"):
                        finish_reason = candidate["finishReason"]
            # Gemini has no end-of-stream event: a finishReason is what marks a complete answer.
            if finish_reason is None and not blocked:
                raise cut_stream_error(self.kind)
            finish = "content_filter" if blocked else _finish(finish_reason, tool_count > 0)
            yield factory.chunk({}, finish_reason=finish)
            if usage is not None:
                yield factory.usage_chunk(usage)

    async def embed(self, target: ProviderTarget, request: Mapping[str, Any]) -> dict[str, Any]:
        inputs = request.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or ())
        if not all(isinstance(t, str) for t in texts):
            raise ProviderError(
                "gemini embeddings take text input only", kind="bad_request", retryable=False
            )
        model = "models/" + target.upstream_model.removeprefix("models/")
        requests: list[dict[str, Any]] = []
        for text in texts:
            item: dict[str, Any] = {"model": model, "content": {"parts": [{"text": text}]}}
            if request.get("dimensions"):
                item["outputDimensionality"] = request["dimensions"]
            requests.append(item)
        resp = await request_json(
            "POST",
            self._model_url(target, "batchEmbedContents"),
            headers=self._headers(target),
            json={"requests": requests},
            timeouts=target.timeouts,
        )
        if resp.status >= 400:
            raise gemini_error(resp.status, resp.headers, resp.body, target.api_key)
        data = loads_object(resp.body, "gemini embeddings response")
        embeddings = data.get("embeddings")
        if not isinstance(embeddings, list) or len(embeddings) != len(texts):
            raise ProviderError(
                "gemini embeddings response does not match the input",
                kind="malformed",
                retryable=True,
            )
        # batchEmbedContents reports no token usage; 0 tells billing to estimate.
        prompt_tokens = int((data.get("usageMetadata") or {}).get("promptTokenCount") or 0)
        return {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": e.get("values", [])}
                for i, e in enumerate(embeddings)
            ],
            "model": target.upstream_model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }

    async def health(self, target: ProviderTarget) -> None:
        resp = await request_json(
            "GET",
            f"{self._base(target)}/models?pageSize=1",
            headers=self._headers(target),
            timeouts=target.timeouts,
        )
        if resp.status >= 400:
            raise gemini_error(resp.status, resp.headers, resp.body, target.api_key)
