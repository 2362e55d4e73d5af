"""A cached chat completion served again: as a JSON body, or as the SSE stream a streaming
client expects (role, content and tool-call deltas, the finish reason, usage when asked
for, ``[DONE]``). Each replay gets its own id and creation time."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator, Mapping
from typing import Any


def _fresh(response: Mapping[str, Any]) -> dict[str, Any]:
    body = dict(response)
    body["id"] = f"chatcmpl-{secrets.token_hex(12)}"
    body["created"] = int(time.time())
    return body


def completion(response: Mapping[str, Any]) -> dict[str, Any]:
    return _fresh(response)


def _sse(obj: Mapping[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def stream_events(response: Mapping[str, Any], *, include_usage: bool) -> Iterator[bytes]:
    body = _fresh(response)
    base = {
        "id": body["id"],
        "object": "chat.completion.chunk",
        "created": body["created"],
        "model": body.get("model", ""),
    }
    for choice in body.get("choices") or ():
        index = choice.get("index", 0)
        message = choice.get("message") or {}

        def chunk(delta: dict[str, Any], finish: str | None = None, i: int = index) -> bytes:
            return _sse(
                {**base, "choices": [{"index": i, "delta": delta, "finish_reason": finish}]}
            )

        yield chunk({"role": "assistant", "content": ""})
        if message.get("content"):
            yield chunk({"content": message["content"]})
        for n, call in enumerate(message.get("tool_calls") or ()):
            fn = call.get("function") or {}
            yield chunk(
                {
                    "tool_calls": [
                        {
                            "index": n,
                            "id": call.get("id"),
                            "type": call.get("type", "function"),
                            "function": {
                                "name": fn.get("name"),
                                "arguments": fn.get("arguments", ""),
                            },
                        }
                    ]
                }
            )
        yield chunk({}, choice.get("finish_reason") or "stop")
    if include_usage and body.get("usage"):
        yield _sse({**base, "choices": [], "usage": body["usage"]})
    yield b"data: [DONE]\n\n"
