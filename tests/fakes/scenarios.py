"""What every fake answers, whatever its wire format: the scenarios and the
deterministic contents.

Deterministic contents (all formats, counted on the native request as the server got it):
- prompt_tokens = 10 + number of whitespace-separated words in every text of the request:
  system prompt(s) and the text of every message (user and assistant; image parts, tool
  definitions, tool calls and tool results are not counted). Text an adapter adds (e.g.
  Anthropic's JSON-mode instruction) is counted because the server sees it.
- the answer text is "fake reply: " + the words of the last user message joined by single
  spaces ("fake reply:" alone when it has no text), then cut before the earliest stop
  sequence found in it (finish "stop"), then cut to max_tokens words (finish "length").
  "fake-json" answers json.dumps({"answer": <last user words>}) instead; "fake-tools"
  answers a tool call to the first declared tool ("lookup" if none) with arguments
  {"query": <last user words>}, or, when the conversation ends with a tool result,
  "tool result: " + the words of that result.
- completion_tokens = number of words in the answer text; a tool call costs exactly 7.
- embeddings: 8 dimensions (or `dimensions`), derived from sha256 of the text; prompt
  tokens = number of words across the inputs (Gemini reports none, as the real API).
Streams carry exactly the same text (split after each word) and usage as the non-stream.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

BASE_PROMPT_TOKENS = 10
TOOL_CALL_TOKENS = 7
EMBEDDING_DIMS = 8
CREATED = 1_700_000_000
TIMEOUT_SLEEP = 60.0  # longer than any test timeout; stop() wakes it early

ERROR_STATUS = {
    "fake-400": 400,
    "fake-401": 401,
    "fake-403": 403,
    "fake-404": 404,
    "fake-429": 429,
    "fake-500": 500,
    "fake-503": 503,
    "fake-529": 529,
    "fake-context-length": 400,
    "fake-500-nul": 500,  # OpenAI wire only: a NUL character in the error message
    "fake-500-echo": 500,  # OpenAI wire only: echoes the key it got, raw and encoded
}
SCENARIOS = frozenset(
    {
        "fake-ok",
        "fake-slow-first-byte",
        "fake-timeout",
        "fake-cut-stream",
        "fake-truncated-stream",
        "fake-stream-error",
        "fake-malformed",
        "fake-no-usage",
        "fake-tools",
        "fake-json",
        "fake-overbill",
        *ERROR_STATUS,
    }
)


def count_words(text: str) -> int:
    return len(text.split())


def fake_embedding(text: str, dims: int = EMBEDDING_DIMS) -> list[float]:
    values: list[float] = []
    counter = 0
    while len(values) < dims:
        digest = hashlib.sha256(text.encode() + counter.to_bytes(4, "big")).digest()
        values.extend(round(b / 255 * 2 - 1, 6) for b in digest)
        counter += 1
    return values[:dims]


@dataclass
class Prompt:
    texts: list[str] = field(default_factory=list)
    last_user_text: str = ""
    tool_result: str | None = None  # the conversation ends with this tool result
    tool_names: list[str] = field(default_factory=list)
    max_tokens: int | None = None
    stops: list[str] = field(default_factory=list)


@dataclass
class Answer:
    text: str
    finish: str  # "stop" | "stop_sequence" | "length" | "tool_calls"
    prompt_tokens: int
    completion_tokens: int
    stop_sequence: str | None = None
    tool_name: str | None = None
    tool_args: dict[str, Any] | None = None

    def pieces(self) -> list[str]:
        return re.findall(r"\s*\S+\s*|\s+", self.text)

    def args_json(self) -> str:
        return json.dumps(self.tool_args)

    def args_pieces(self) -> list[str]:
        raw = self.args_json()
        return [raw[: len(raw) // 2], raw[len(raw) // 2 :]]


def make_answer(prompt: Prompt, scenario: str) -> Answer:
    prompt_tokens = BASE_PROMPT_TOKENS + sum(count_words(t) for t in prompt.texts)
    user_words = " ".join(prompt.last_user_text.split())
    if scenario == "fake-tools" and prompt.tool_result is None:
        name = prompt.tool_names[0] if prompt.tool_names else "lookup"
        return Answer(
            text="",
            finish="tool_calls",
            prompt_tokens=prompt_tokens,
            completion_tokens=TOOL_CALL_TOKENS,
            tool_name=name,
            tool_args={"query": user_words},
        )
    if scenario == "fake-tools":
        text = "tool result: " + " ".join((prompt.tool_result or "").split())
    elif scenario == "fake-json":
        text = json.dumps({"answer": user_words})
    else:
        text = f"fake reply: {user_words}".rstrip()
    finish, stop_sequence = "stop", None
    hits = [(text.find(s), s) for s in prompt.stops if s and s in text]
    if hits:
        index, stop_sequence = min(hits)
        text, finish = text[:index], "stop_sequence"
    words = text.split()
    # "fake-overbill" ignores max_tokens: the whole answer, billed in full.
    if (
        prompt.max_tokens is not None
        and len(words) > prompt.max_tokens
        and scenario != "fake-overbill"
    ):
        text, finish, stop_sequence = " ".join(words[: prompt.max_tokens]), "length", None
    return Answer(text, finish, prompt_tokens, count_words(text), stop_sequence)


def stop_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [s for s in value if isinstance(s, str)]


def sse(obj: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(obj)}\n\n".encode()


def retry_headers(status: int) -> dict[str, str]:
    return {"retry-after": "1"} if status == 429 else {}
