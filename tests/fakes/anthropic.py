"""The Anthropic Messages wire format: `/v1/messages` (SSE streams), `/v1/models`."""

from __future__ import annotations

from typing import Any, ClassVar

from tests.fakes.scenarios import (
    Answer,
    Prompt,
    retry_headers,
    sse,
    stop_list,
)
from tests.fakes.server import Exchange, FakeUpstream


def anthropic_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(b.get("text", "") for b in content if b.get("type") == "text")
    return ""


class FakeAnthropic(FakeUpstream):
    wire = "anthropic"
    _stop_reasons: ClassVar[dict[str, str]] = {
        "stop": "end_turn",
        "stop_sequence": "stop_sequence",
        "length": "max_tokens",
        "tool_calls": "tool_use",
    }

    def route(self, ex: Exchange) -> tuple[str, str | None] | None:
        body = ex.json if isinstance(ex.json, dict) else {}
        if ex.method == "GET" and ex.path == "/v1/models":
            return "models", None
        if ex.method == "POST" and ex.path == "/v1/messages":
            return ("stream" if body.get("stream") else "chat"), body.get("model")
        return None

    @staticmethod
    def _error(etype: str, message: str) -> dict[str, Any]:
        return {
            "type": "error",
            "error": {"type": etype, "message": message},
            "request_id": "req_fake1",
        }

    def auth_error(self, ex: Exchange) -> tuple[int, Any] | None:
        if "x-api-key" not in ex.headers:
            return 401, self._error("authentication_error", "x-api-key header is required")
        if "anthropic-version" not in ex.headers:
            return 400, self._error(
                "invalid_request_error", "anthropic-version: header is required"
            )
        if ex.method == "POST" and not isinstance((ex.json or {}).get("max_tokens"), int):
            return 400, self._error("invalid_request_error", "max_tokens: Field required")
        return None

    def error_body(
        self, scenario: str, status: int, model: str | None, ex: Exchange | None = None
    ) -> tuple[Any, dict[str, str]]:
        etype, message = {
            "fake-400": ("invalid_request_error", "messages: roles must alternate"),
            "fake-401": ("authentication_error", "invalid x-api-key"),
            "fake-403": (
                "permission_error",
                "Your API key does not have permission to use the specified resource.",
            ),
            "fake-404": ("not_found_error", f"model: {model}"),
            "fake-429": (
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit",
            ),
            "fake-500": ("api_error", "Internal server error"),
            "fake-503": ("api_error", "Service unavailable"),
            "fake-529": ("overloaded_error", "Overloaded"),
            "fake-context-length": (
                "invalid_request_error",
                "prompt is too long: 210000 tokens > 200000 maximum",
            ),
        }[scenario]
        return self._error(etype, message), retry_headers(status)

    def parse_prompt(self, body: Any) -> Prompt:
        prompt = Prompt()
        system = body.get("system")
        if system:
            prompt.texts.append(anthropic_text(system))
        messages = body.get("messages") or []
        for message in messages:
            text = anthropic_text(message.get("content"))
            prompt.texts.append(text)
            if message.get("role") == "user" and text:
                prompt.last_user_text = text
        if messages and isinstance(messages[-1].get("content"), list):
            results = [b for b in messages[-1]["content"] if b.get("type") == "tool_result"]
            if results:
                prompt.tool_result = anthropic_text(results[-1].get("content"))
                prompt.last_user_text = ""
        prompt.tool_names = [t["name"] for t in body.get("tools") or []]
        prompt.max_tokens = body.get("max_tokens")
        prompt.stops = stop_list(body.get("stop_sequences"))
        return prompt

    @staticmethod
    def _usage(answer: Answer, output_tokens: int | None = None) -> dict[str, Any]:
        return {
            "input_tokens": answer.prompt_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": answer.completion_tokens if output_tokens is None else output_tokens,
        }

    def _message(
        self, answer: Answer, model: str, content: list[Any], done: bool
    ) -> dict[str, Any]:
        return {
            "id": "msg_fake1",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": self._stop_reasons[answer.finish] if done else None,
            "stop_sequence": answer.stop_sequence if done else None,
        }

    def completion_body(self, answer: Answer, model: str, *, usage: bool) -> Any:
        content: list[Any]
        if answer.tool_name:
            content = [
                {
                    "type": "tool_use",
                    "id": "toolu_fake1",
                    "name": answer.tool_name,
                    "input": answer.tool_args,
                }
            ]
        else:
            content = [{"type": "text", "text": answer.text}]
        body = self._message(answer, model, content, done=True)
        if usage:
            body["usage"] = self._usage(answer)
        return body

    def stream_events(
        self, ex: Exchange, answer: Answer, model: str, *, usage: bool
    ) -> list[bytes]:
        start = self._message(answer, model, [], done=False)
        if usage:
            start["usage"] = self._usage(answer, output_tokens=1)
        events = [sse({"type": "message_start", "message": start}, "message_start")]
        if answer.tool_name:
            block = {"type": "tool_use", "id": "toolu_fake1", "name": answer.tool_name, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in answer.args_pieces()]
        else:
            block = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in answer.pieces()]
        events.append(
            sse(
                {"type": "content_block_start", "index": 0, "content_block": block},
                "content_block_start",
            )
        )
        events.append(sse({"type": "ping"}, "ping"))
        for delta in deltas:
            events.append(
                sse(
                    {"type": "content_block_delta", "index": 0, "delta": delta},
                    "content_block_delta",
                )
            )
        events.append(sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
        message_delta: dict[str, Any] = {
            "type": "message_delta",
            "delta": {
                "stop_reason": self._stop_reasons[answer.finish],
                "stop_sequence": answer.stop_sequence,
            },
        }
        if usage:
            message_delta["usage"] = {"output_tokens": answer.completion_tokens}
        events.append(sse(message_delta, "message_delta"))
        events.append(sse({"type": "message_stop"}, "message_stop"))
        return events

    def malformed_event(self) -> bytes:
        return b'event: content_block_delta\ndata: {"type": "content_block_delta", \n\n'

    def stream_error_event(self) -> bytes:
        return sse(self._error("overloaded_error", "Overloaded"), "error")

    def models_body(self) -> Any:
        return {
            "data": [
                {
                    "type": "model",
                    "id": "fake-ok",
                    "display_name": "Fake",
                    "created_at": "2025-02-19T00:00:00Z",
                    "lifecycle": "active",
                }
            ],
            "has_more": False,
            "first_id": "fake-ok",
            "last_id": "fake-ok",
        }
