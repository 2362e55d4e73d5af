"""The OpenAI wire format: `/v1/chat/completions`, `/v1/embeddings`, `/v1/models`, and
Azure's deployment paths on the same server.
"""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import quote

from tests.fakes.scenarios import (
    CREATED,
    EMBEDDING_DIMS,
    Answer,
    Prompt,
    count_words,
    fake_embedding,
    retry_headers,
    sse,
    stop_list,
)
from tests.fakes.server import Exchange, FakeUpstream


def openai_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if p.get("type") == "text")
    return ""


class FakeOpenAI(FakeUpstream):
    """`/v1/chat/completions`, `/v1/embeddings`, `/v1/models`, plus Azure's deployment paths."""

    wire = "openai"
    _azure = re.compile(r"^/openai/deployments/([^/]+)/(chat/completions|embeddings)$")

    @property
    def base_url(self) -> str:
        return self.root_url + "/v1"

    @property
    def azure_base_url(self) -> str:
        return self.root_url

    def route(self, ex: Exchange) -> tuple[str, str | None] | None:
        body = ex.json if isinstance(ex.json, dict) else {}
        if ex.method == "GET" and ex.path in ("/v1/models", "/openai/models"):
            return "models", None
        if ex.method != "POST":
            return None
        if ex.path == "/v1/chat/completions":
            return ("stream" if body.get("stream") else "chat"), body.get("model")
        if ex.path == "/v1/embeddings":
            return "embed", body.get("model")
        match = self._azure.match(ex.path)
        if match:
            if match.group(2) == "embeddings":
                return "embed", match.group(1)
            return ("stream" if body.get("stream") else "chat"), match.group(1)
        return None

    def auth_error(self, ex: Exchange) -> tuple[int, Any] | None:
        if ex.path.startswith("/openai/"):
            if "api-key" not in ex.headers:
                return 401, {
                    "error": {
                        "code": "401",
                        "message": "Access denied due to missing subscription key.",
                    }
                }
            if "api-version" not in ex.query:
                return 404, {"error": {"code": "404", "message": "Resource not found"}}
            return None
        if not ex.headers.get("authorization", "").startswith("Bearer "):
            return 401, {
                "error": {
                    "message": "You didn't provide an API key.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            }
        return None

    def error_body(
        self, scenario: str, status: int, model: str | None, ex: Exchange | None = None
    ) -> tuple[Any, dict[str, str]]:
        key = ""
        if ex is not None:
            key = ex.headers.get("authorization", "").removeprefix("Bearer ")
            key = key or ex.headers.get("api-key", "")
        etype, code, message = {
            "fake-400": ("invalid_request_error", None, "Invalid value for 'temperature'."),
            # Real OpenAI echoes (part of) the key; adapters must redact it.
            "fake-401": (
                "invalid_request_error",
                "invalid_api_key",
                f"Incorrect API key provided: {key}.",
            ),
            "fake-403": (
                "invalid_request_error",
                "unsupported_country_region_territory",
                "Country, region, or territory not supported",
            ),
            "fake-404": (
                "invalid_request_error",
                "model_not_found",
                f"The model `{model}` does not exist or you do not have access to it.",
            ),
            "fake-429": ("requests", "rate_limit_exceeded", "Rate limit reached for requests"),
            "fake-500": (
                "server_error",
                None,
                "The server had an error while processing your request.",
            ),
            "fake-503": (
                "server_error",
                None,
                "The engine is currently overloaded, please try again later.",
            ),
            "fake-529": ("server_error", None, "Overloaded."),
            "fake-context-length": (
                "invalid_request_error",
                "context_length_exceeded",
                "This model's maximum context length is 8192 tokens. However, your messages resulted in 9001 tokens.",
            ),
            "fake-500-nul": ("server_error", None, "boom\u0000boom"),
            "fake-500-echo": (
                "server_error",
                "key_trouble",
                f"upstream failed for key={key} (as sent: {quote(key)}, "
                f"basic {base64.b64encode(f'user:{key}'.encode()).decode()}, "
                f"b64 {base64.b64encode(key.encode()).decode()})",
            ),
        }[scenario]
        if ex is not None and ex.path.startswith("/openai/") and code is None:
            # Azure's error schema (inference.json `errorBase`) makes `code` a string; for a
            # bare status Azure sends the number, e.g. "429".
            code = str(status)
        body = {"error": {"message": message, "type": etype, "param": None, "code": code}}
        return body, retry_headers(status)

    def parse_prompt(self, body: Any) -> Prompt:
        prompt = Prompt()
        messages = body.get("messages") or []
        for message in messages:
            text = openai_text(message.get("content"))
            if message.get("role") == "tool":
                continue
            prompt.texts.append(text)
            if message.get("role") == "user":
                prompt.last_user_text = text
        if messages and messages[-1].get("role") == "tool":
            prompt.tool_result = openai_text(messages[-1].get("content"))
        prompt.tool_names = [t["function"]["name"] for t in body.get("tools") or []]
        prompt.max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        prompt.stops = stop_list(body.get("stop"))
        return prompt

    @staticmethod
    def _finish(answer: Answer) -> str:
        return "stop" if answer.finish == "stop_sequence" else answer.finish

    @staticmethod
    def _usage(answer: Answer) -> dict[str, Any]:
        return {
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "total_tokens": answer.prompt_tokens + answer.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        }

    def completion_body(self, answer: Answer, model: str, *, usage: bool) -> Any:
        message: dict[str, Any] = {"role": "assistant", "content": answer.text, "refusal": None}
        if answer.tool_name:
            message["content"] = None
            message["tool_calls"] = [
                {
                    "id": "call_fake1",
                    "type": "function",
                    "function": {"name": answer.tool_name, "arguments": answer.args_json()},
                }
            ]
        body: dict[str, Any] = {
            "id": "chatcmpl-fake1",
            "object": "chat.completion",
            "created": CREATED,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": self._finish(answer),
                }
            ],
            "system_fingerprint": "fp_fake",
        }
        if usage:
            body["usage"] = self._usage(answer)
        return body

    def stream_events(
        self, ex: Exchange, answer: Answer, model: str, *, usage: bool
    ) -> list[bytes]:
        include_usage = bool((ex.json.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            obj: dict[str, Any] = {
                "id": "chatcmpl-fake1",
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if include_usage:
                obj["usage"] = None
            return sse(obj)

        events = [chunk({"role": "assistant", "content": "", "refusal": None})]
        if answer.tool_name:
            first, second = answer.args_pieces()
            call = {
                "index": 0,
                "id": "call_fake1",
                "type": "function",
                "function": {"name": answer.tool_name, "arguments": ""},
            }
            events.append(chunk({"tool_calls": [call]}))
            for piece in (first, second):
                events.append(
                    chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                )
        events.extend(chunk({"content": piece}) for piece in answer.pieces())
        events.append(chunk({}, self._finish(answer)))
        if include_usage and usage:
            events.append(
                sse(
                    {
                        "id": "chatcmpl-fake1",
                        "object": "chat.completion.chunk",
                        "created": CREATED,
                        "model": model,
                        "system_fingerprint": "fp_fake",
                        "choices": [],
                        "usage": self._usage(answer),
                    }
                )
            )
        events.append(b"data: [DONE]\n\n")
        return events

    def stream_error_event(self) -> bytes:
        return sse(
            {
                "error": {
                    "message": "The server had an error while processing your request.",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            }
        )

    def embed_body(self, body: Any, model: str) -> Any:
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        dims = int(body.get("dimensions") or EMBEDDING_DIMS)
        tokens = sum(count_words(str(t)) for t in texts)
        return {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": fake_embedding(str(t), dims)}
                for i, t in enumerate(texts)
            ],
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    def models_body(self) -> Any:
        return {
            "object": "list",
            "data": [{"id": "fake-ok", "object": "model", "created": CREATED, "owned_by": "fake"}],
        }
