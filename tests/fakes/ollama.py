"""The Ollama wire format: `/api/chat` (NDJSON streams), `/api/embed`, `/api/tags`."""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.scenarios import (
    EMBEDDING_DIMS,
    Answer,
    Prompt,
    count_words,
    fake_embedding,
    retry_headers,
    stop_list,
)
from tests.fakes.server import Exchange, FakeUpstream


class FakeOllama(FakeUpstream):
    """`/api/chat` (NDJSON streams), `/api/embed`, `/api/tags`."""

    wire = "ollama"
    stream_content_type = "application/x-ndjson"

    def route(self, ex: Exchange) -> tuple[str, str | None] | None:
        body = ex.json if isinstance(ex.json, dict) else {}
        if ex.method == "GET" and ex.path == "/api/tags":
            return "models", None
        if ex.method == "POST" and ex.path == "/api/chat":
            # Ollama streams unless told otherwise.
            return ("stream" if body.get("stream", True) else "chat"), body.get("model")
        if ex.method == "POST" and ex.path == "/api/embed":
            return "embed", body.get("model")
        return None

    def error_body(
        self, scenario: str, status: int, model: str | None, ex: Exchange | None = None
    ) -> tuple[Any, dict[str, str]]:
        message = {
            "fake-400": "invalid options",
            "fake-401": "unauthorized",
            "fake-403": "forbidden",
            "fake-404": f'model "{model}" not found, try pulling it first',
            "fake-429": "too many requests",
            "fake-500": "llama runner process has terminated",
            "fake-503": "server busy, please try again.  maximum pending requests exceeded",
            "fake-529": "server busy",
            "fake-context-length": "input exceeds the context length",
        }[scenario]
        return {"error": message}, retry_headers(status)

    def parse_prompt(self, body: Any) -> Prompt:
        prompt = Prompt()
        messages = body.get("messages") or []
        for message in messages:
            if message.get("role") == "tool":
                continue
            text = str(message.get("content") or "")
            prompt.texts.append(text)
            if message.get("role") == "user":
                prompt.last_user_text = text
        if messages and messages[-1].get("role") == "tool":
            prompt.tool_result = str(messages[-1].get("content") or "")
        prompt.tool_names = [t["function"]["name"] for t in body.get("tools") or []]
        options = body.get("options") or {}
        prompt.max_tokens = options.get("num_predict")
        prompt.stops = stop_list(options.get("stop"))
        return prompt

    @staticmethod
    def _final(answer: Answer, model: str, *, usage: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "created_at": "2024-01-01T00:00:00Z",
            "done": True,
            "done_reason": "length" if answer.finish == "length" else "stop",
            "total_duration": 1000000,
            "load_duration": 1000,
        }
        if usage:
            body.update(
                prompt_eval_count=answer.prompt_tokens,
                prompt_eval_duration=1000,
                eval_count=answer.completion_tokens,
                eval_duration=1000,
            )
        return body

    @staticmethod
    def _message(answer: Answer, text: str, *, with_tools: bool) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if with_tools and answer.tool_name:
            message["tool_calls"] = [
                {"function": {"name": answer.tool_name, "arguments": answer.tool_args}}
            ]
        return message

    def completion_body(self, answer: Answer, model: str, *, usage: bool) -> Any:
        body = self._final(answer, model, usage=usage)
        body["message"] = self._message(answer, answer.text, with_tools=True)
        return body

    def stream_events(
        self, ex: Exchange, answer: Answer, model: str, *, usage: bool
    ) -> list[bytes]:
        def line(obj: dict[str, Any]) -> bytes:
            return json.dumps(obj).encode() + b"\n"

        def partial(message: dict[str, Any]) -> bytes:
            return line(
                {
                    "model": model,
                    "created_at": "2024-01-01T00:00:00Z",
                    "message": message,
                    "done": False,
                }
            )

        events = []
        if answer.tool_name:
            events.append(partial(self._message(answer, "", with_tools=True)))
        events.extend(partial(self._message(answer, p, with_tools=False)) for p in answer.pieces())
        final = self._final(answer, model, usage=usage)
        final["message"] = {"role": "assistant", "content": ""}
        events.append(line(final))
        return events

    def malformed_event(self) -> bytes:
        return b'{"model": "x", "message": {\n'

    def stream_error_event(self) -> bytes:
        return b'{"error": "an error was encountered while running the model"}\n'

    def embed_body(self, body: Any, model: str) -> Any:
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        dims = int(body.get("dimensions") or EMBEDDING_DIMS)
        return {
            "model": model,
            "embeddings": [fake_embedding(str(t), dims) for t in texts],
            "total_duration": 1000,
            "load_duration": 100,
            "prompt_eval_count": sum(count_words(str(t)) for t in texts),
        }

    def models_body(self) -> Any:
        return {"models": [{"name": "fake-ok:latest", "model": "fake-ok:latest", "size": 1}]}
