"""Validation of OpenAI request bodies and their translation to engine.RouteRequest.

Hand-written rather than DRF serializers: this runs on every gateway request, and a
serializer costs an order of magnitude more CPU for the same checks. Errors name the
offending field (OpenAI's ``param``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from routing import engine
from routing.engine import classify

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
RESPONSE_FORMATS = frozenset({"text", "json_object", "json_schema"})
MAX_MESSAGES = 10_000
MAX_EMBEDDING_DIMENSIONS = 65_536  # no embedding model has more (OpenAI's largest: 3,072)


class InvalidRequest(Exception):
    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


def _number(body: Mapping[str, Any], name: str, lo: float, hi: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise InvalidRequest(f"'{name}' must be a number between {lo:g} and {hi:g}.", name)


def _positive_int(body: Mapping[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequest(f"'{name}' must be a positive integer.", name)
    return value


def validate_chat(body: Any) -> None:
    """Raise InvalidRequest for a body the gateway must refuse before routing."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a non-empty string.", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' is required and must be a non-empty array.", "messages")
    if len(messages) > MAX_MESSAGES:
        raise InvalidRequest(f"'messages' has more than {MAX_MESSAGES} items.", "messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise InvalidRequest(f"'messages[{i}]' must be an object.", f"messages[{i}]")
        role = m.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise InvalidRequest(
                f"'messages[{i}].role' must be one of {', '.join(sorted(ROLES))}.",
                f"messages[{i}].role",
            )
        content = m.get("content")
        if content is None:
            if role != "assistant" or not m.get("tool_calls"):
                if role != "assistant":
                    raise InvalidRequest(
                        f"'messages[{i}].content' is required for role {role}.",
                        f"messages[{i}].content",
                    )
        elif not isinstance(content, str | list):
            raise InvalidRequest(
                f"'messages[{i}].content' must be a string or an array of content parts.",
                f"messages[{i}].content",
            )
        elif isinstance(content, list):
            for j, part in enumerate(content):
                where = f"messages[{i}].content[{j}]"
                if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                    raise InvalidRequest(f"'{where}' must be an object with a 'type'.", where)
                _validate_part(part, where)
        calls = m.get("tool_calls")
        if calls is not None:
            _validate_tool_calls(calls, f"messages[{i}].tool_calls")
        if role == "tool" and not isinstance(m.get("tool_call_id"), str):
            raise InvalidRequest(
                f"'messages[{i}].tool_call_id' is required for role tool.",
                f"messages[{i}].tool_call_id",
            )
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean.", "stream")
    n = body.get("n")
    if n is not None and n != 1:
        raise InvalidRequest("Only 'n': 1 is supported.", "n")
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    _number(body, "presence_penalty", -2, 2)
    _number(body, "frequency_penalty", -2, 2)
    _positive_int(body, "max_tokens")
    _positive_int(body, "max_completion_tokens")
    stop = body.get("stop")
    if stop is not None and not (
        isinstance(stop, str)
        or (isinstance(stop, list) and len(stop) <= 4 and all(isinstance(s, str) for s in stop))
    ):
        raise InvalidRequest("'stop' must be a string or an array of up to 4 strings.", "stop")
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise InvalidRequest("'tools' must be an array.", "tools")
        for i, t in enumerate(tools):
            fn = t.get("function") if isinstance(t, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise InvalidRequest(
                    f"'tools[{i}]' must be {{'type': 'function', 'function': {{'name': ...}}}}.",
                    f"tools[{i}]",
                )
    rf = body.get("response_format")
    if rf is not None and (
        not isinstance(rf, dict)
        or not isinstance(rf.get("type"), str)
        or rf["type"] not in RESPONSE_FORMATS
    ):
        raise InvalidRequest(
            "'response_format.type' must be one of text, json_object, json_schema.",
            "response_format",
        )
    if isinstance(rf, dict) and rf.get("type") == "json_schema":
        js = rf.get("json_schema")
        if not isinstance(js, dict) or not isinstance(js.get("schema", {}), dict):
            raise InvalidRequest(
                "'response_format.json_schema' must be an object with a 'schema' object.",
                "response_format.json_schema",
            )
    so = body.get("stream_options")
    if so is not None and not isinstance(so, dict):
        raise InvalidRequest("'stream_options' must be an object.", "stream_options")


def _validate_part(part: Mapping[str, Any], where: str) -> None:
    """The shapes adapters rely on: a text part's text, an image part's URL."""
    kind = part["type"]
    if kind == "text" and not isinstance(part.get("text"), str):
        raise InvalidRequest(f"'{where}.text' must be a string.", f"{where}.text")
    if kind == "image_url":
        image = part.get("image_url")
        if not isinstance(image, dict) or not isinstance(image.get("url"), str):
            raise InvalidRequest(
                f"'{where}.image_url' must be an object with a string 'url'.",
                f"{where}.image_url",
            )


def _validate_tool_calls(calls: Any, where: str) -> None:
    if not isinstance(calls, list):
        raise InvalidRequest(f"'{where}' must be an array.", where)
    for j, call in enumerate(calls):
        fn = call.get("function") if isinstance(call, dict) else None
        if (
            not isinstance(fn, dict)
            or not isinstance(fn.get("name"), str)
            or not isinstance(fn.get("arguments", ""), str)
        ):
            raise InvalidRequest(
                f"'{where}[{j}]' must be {{'id': ..., 'type': 'function', 'function': "
                "{'name': str, 'arguments': str}}.",
                f"{where}[{j}]",
            )


def validate_embeddings(body: Any) -> None:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a non-empty string.", "model")
    data = body.get("input")
    ok = (isinstance(data, str) and data) or (
        isinstance(data, list)
        and data
        and (
            all(isinstance(x, str) for x in data)
            or all(isinstance(x, int) and not isinstance(x, bool) for x in data)
            or all(isinstance(x, list) for x in data)
        )
    )
    if not ok:
        raise InvalidRequest(
            "'input' must be a non-empty string, array of strings, or array of token arrays.",
            "input",
        )
    dims = _positive_int(body, "dimensions")
    if dims is not None and dims > MAX_EMBEDDING_DIMENSIONS:
        raise InvalidRequest(
            f"'dimensions' must be at most {MAX_EMBEDDING_DIMENSIONS}.", "dimensions"
        )
    fmt = body.get("encoding_format")
    if fmt is not None and fmt not in ("float", "base64"):
        raise InvalidRequest("'encoding_format' must be 'float' or 'base64'.", "encoding_format")


def _needs(body: Mapping[str, Any]) -> frozenset[str]:
    needs = set()
    if body.get("tools"):
        needs.add("tools")
    rf = body.get("response_format")
    if isinstance(rf, dict) and rf.get("type") in ("json_object", "json_schema"):
        needs.add("json")
    if body.get("stream"):
        needs.add("streaming")
    for m in body["messages"]:
        content = m.get("content")
        if isinstance(content, list) and any(
            isinstance(p, dict) and p.get("type") in ("image_url", "input_image") for p in content
        ):
            needs.add("vision")
            break
    return frozenset(needs)


def route_request_for_chat(
    body: Mapping[str, Any], hints: Mapping[str, str] | None = None
) -> engine.RouteRequest:
    hints = hints or {}
    messages = body["messages"]
    tokens = classify.count_message_tokens(messages)
    if body.get("tools"):
        tokens += classify.estimate_tokens(str(body["tools"]))
    category, tier = classify.classify(messages, tokens)
    max_out = body.get("max_completion_tokens") or body.get("max_tokens")
    raw_metadata = body.get("metadata")
    metadata: Mapping[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
    objective = hints.get("objective") or metadata.get("aura_objective")
    if objective is not None and (
        not isinstance(objective, str) or objective not in engine.OBJECTIVES
    ):
        raise InvalidRequest(
            f"objective must be one of {', '.join(engine.OBJECTIVES)}.", "x-aura-objective"
        )
    max_cost_raw = hints.get("max_cost") or metadata.get("aura_max_cost")
    max_cost = None
    if max_cost_raw is not None:
        try:
            max_cost = float(max_cost_raw)
        except (TypeError, ValueError):
            max_cost = math.nan
        if isinstance(max_cost_raw, bool) or not (math.isfinite(max_cost) and max_cost >= 0):
            raise InvalidRequest(
                "max cost must be a non-negative number of USD.", "x-aura-max-cost"
            ) from None
    session_id = hints.get("session_id") or metadata.get("session_id") or body.get("user")
    if session_id is not None and not isinstance(session_id, str):
        raise InvalidRequest("'user' and 'metadata.session_id' must be strings.", "user")
    return engine.RouteRequest(
        model=body["model"],
        prompt_tokens=tokens,
        max_output_tokens=max_out,
        needs=_needs(body),
        category=category,
        tier=hints["tier"] if hints.get("tier") in engine.TIERS else tier,
        session_id=session_id,
        objective=objective,
        max_cost=max_cost,
        kind="chat",
    )


def route_request_for_embeddings(body: Mapping[str, Any]) -> engine.RouteRequest:
    data = body["input"]
    if isinstance(data, str):
        tokens = classify.estimate_tokens(data)
    elif data and isinstance(data[0], str):
        tokens = sum(classify.estimate_tokens(x) for x in data)
    elif data and isinstance(data[0], list):
        tokens = sum(len(x) for x in data)
    else:
        tokens = len(data)
    return engine.RouteRequest(
        model=body["model"],
        prompt_tokens=tokens,
        max_output_tokens=0,
        needs=frozenset({"embeddings"}),
        kind="embeddings",
    )
