"""The Google Gemini wire format: `generateContent`, `streamGenerateContent?alt=sse`,
`batchEmbedContents`, `/v1beta/models`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.fakes.scenarios import (
    EMBEDDING_DIMS,
    ERROR_STATUS,
    Answer,
    Prompt,
    fake_embedding,
    retry_headers,
    sse,
    stop_list,
)
from tests.fakes.server import Exchange, FakeUpstream


def gemini_text(parts: Any) -> str:
    return " ".join(str(p["text"]) for p in parts or [] if "text" in p)


class FakeGemini(FakeUpstream):
    """`/v1beta/models/{model}:generateContent|streamGenerateContent|batchEmbedContents`."""

    wire = "gemini"
    _path = re.compile(
        r"^/v1beta/models/([^/:]+):(generateContent|streamGenerateContent|batchEmbedContents)$"
    )

    def route(self, ex: Exchange) -> tuple[str, str | None] | None:
        if ex.method == "GET" and ex.path == "/v1beta/models":
            return "models", None
        match = self._path.match(ex.path)
        if ex.method != "POST" or not match:
            return None
        model, method = match.groups()
        op = {
            "generateContent": "chat",
            "streamGenerateContent": "stream",
            "batchEmbedContents": "embed",
        }
        return op[method], model

    @staticmethod
    def _error(
        code: int, status: str, message: str, details: list[Any] | None = None
    ) -> dict[str, Any]:
        err: dict[str, Any] = {"code": code, "message": message, "status": status}
        if details:
            err["details"] = details
        return {"error": err}

    def auth_error(self, ex: Exchange) -> tuple[int, Any] | None:
        if "x-goog-api-key" not in ex.headers and "key" not in ex.query:
            return 403, self._error(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
            )
        if ex.path.endswith(":streamGenerateContent") and ex.query.get("alt") != "sse":
            # The real API would answer a JSON array; the adapter must always ask for SSE.
            return 400, self._error(
                400, "INVALID_ARGUMENT", "fake: streamGenerateContent requires alt=sse"
            )
        return None

    def error_status(self, scenario: str) -> int:
        # A bad key is a 400 INVALID_ARGUMENT on Gemini, not a 401.
        return 400 if scenario == "fake-401" else ERROR_STATUS[scenario]

    def error_body(
        self, scenario: str, status: int, model: str | None, ex: Exchange | None = None
    ) -> tuple[Any, dict[str, str]]:
        if scenario == "fake-401":
            # Gemini answers a bad key with 400 INVALID_ARGUMENT / reason API_KEY_INVALID.
            detail = {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
            return self._error(
                400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", [detail]
            ), {}
        if scenario == "fake-429":
            detail = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}
            return self._error(
                429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", [detail]
            ), retry_headers(429)
        status_name, message = {
            "fake-400": ("INVALID_ARGUMENT", "Invalid JSON payload received."),
            "fake-403": ("PERMISSION_DENIED", "The caller does not have permission"),
            "fake-404": ("NOT_FOUND", f"models/{model} is not found for API version v1beta"),
            "fake-500": ("INTERNAL", "An internal error has occurred."),
            "fake-503": ("UNAVAILABLE", "The model is overloaded. Please try again later."),
            "fake-529": ("UNAVAILABLE", "The model is overloaded. Please try again later."),
            "fake-context-length": (
                "INVALID_ARGUMENT",
                "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
            ),
        }[scenario]
        return self._error(status, status_name, message), {}

    def parse_prompt(self, body: Any) -> Prompt:
        prompt = Prompt()
        system = body.get("systemInstruction")
        if system:
            prompt.texts.append(gemini_text(system.get("parts")))
        contents = body.get("contents") or []
        for content in contents:
            text = gemini_text(content.get("parts"))
            prompt.texts.append(text)
            if content.get("role", "user") == "user" and text:
                prompt.last_user_text = text
        if contents:
            responses = [
                p["functionResponse"]
                for p in contents[-1].get("parts") or []
                if "functionResponse" in p
            ]
            if responses:
                response = responses[-1].get("response") or {}
                only_content = set(response) == {"content"}
                prompt.tool_result = (
                    str(response["content"]) if only_content else json.dumps(response)
                )
        for tool in body.get("tools") or []:
            prompt.tool_names.extend(d["name"] for d in tool.get("functionDeclarations") or [])
        config = body.get("generationConfig") or {}
        prompt.max_tokens = config.get("maxOutputTokens")
        prompt.stops = stop_list(config.get("stopSequences"))
        return prompt

    @staticmethod
    def _usage(answer: Answer) -> dict[str, Any]:
        return {
            "promptTokenCount": answer.prompt_tokens,
            "candidatesTokenCount": answer.completion_tokens,
            "totalTokenCount": answer.prompt_tokens + answer.completion_tokens,
        }

    @staticmethod
    def _candidate(parts: list[Any], finish: str | None) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        return candidate

    @staticmethod
    def _finish(answer: Answer) -> str:
        return "MAX_TOKENS" if answer.finish == "length" else "STOP"

    def _parts(self, answer: Answer) -> list[Any]:
        if answer.tool_name:
            return [{"functionCall": {"name": answer.tool_name, "args": answer.tool_args}}]
        return [{"text": answer.text}]

    def completion_body(self, answer: Answer, model: str, *, usage: bool) -> Any:
        body: dict[str, Any] = {
            "candidates": [self._candidate(self._parts(answer), self._finish(answer))],
            "modelVersion": model,
            "responseId": "fake-response-1",
        }
        if usage:
            body["usageMetadata"] = self._usage(answer)
        return body

    def stream_events(
        self, ex: Exchange, answer: Answer, model: str, *, usage: bool
    ) -> list[bytes]:
        def event(parts: list[Any], finish: str | None = None) -> bytes:
            obj: dict[str, Any] = {
                "candidates": [self._candidate(parts, finish)],
                "modelVersion": model,
                "responseId": "fake-response-1",
            }
            if finish and usage:
                obj["usageMetadata"] = self._usage(answer)
            return sse(obj)

        if answer.tool_name:
            # Gemini sends a function call whole, in one event.
            return [
                event(self._parts(answer)),
                event([{"text": ""}], self._finish(answer)),
            ]
        pieces = answer.pieces() or [""]
        events = [event([{"text": piece}]) for piece in pieces[:-1]]
        events.append(event([{"text": pieces[-1]}], self._finish(answer)))
        return events

    def malformed_event(self) -> bytes:
        return b'data: {"candidates": [{"content": \n\n'

    def stream_error_event(self) -> bytes:
        return sse(
            self._error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
        )

    def embed_body(self, body: Any, model: str) -> Any:
        embeddings = []
        for item in body.get("requests") or []:
            text = gemini_text((item.get("content") or {}).get("parts"))
            dims = int(item.get("outputDimensionality") or EMBEDDING_DIMS)
            embeddings.append({"values": fake_embedding(text, dims)})
        return {"embeddings": embeddings}

    def models_body(self) -> Any:
        return {"models": [{"name": "models/fake-ok", "displayName": "Fake"}]}
