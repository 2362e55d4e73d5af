"""Checks against what the providers publish: their SDKs' types (strictly) and the examples
of their API references (tests/providers/fixtures, see the README there).

The SDK models accept unknown fields and coerce types, so `sdk_problems` validates in strict
JSON mode and then reports every field the SDK type does not declare. `shape_problems` does
the same against a documented field list (Gemini and Ollama have no SDK here).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from tests.fakes.server import Exchange, FakeUpstream, RecordedCall

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(path: str) -> Any:
    return json.loads((FIXTURES / path).read_text())


def fixture_bytes(path: str) -> bytes:
    return (FIXTURES / path).read_bytes()


def sse_events(raw: bytes) -> list[tuple[str | None, str]]:
    """(event name, data) of every server-sent event in `raw`."""
    events = []
    for block in raw.decode().replace("\r\n", "\n").split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if data:
            events.append((name, "\n".join(data)))
    return events


# --- strict SDK validation ---------------------------------------------------------------


def sdk_problems(sdk_type: Any, data: Any) -> list[str]:
    """What is wrong with `data` as `sdk_type`: pydantic's errors in strict JSON mode (missing
    required fields, wrong types, unknown literals) and every field the type does not have."""
    adapter: TypeAdapter[Any] = TypeAdapter(sdk_type)
    try:
        if isinstance(sdk_type, type) and issubclass(sdk_type, BaseModel):
            value = adapter.validate_json(json.dumps(data), strict=True)
        else:
            # Request params are TypedDicts with lazily validated iterables, which only
            # work from Python objects; they hold no dates, so strict Python mode is exact.
            value = adapter.validate_python(data, strict=True)
        dumped = adapter.dump_python(value, mode="json", by_alias=True)
    except ValidationError as exc:
        return [f"{_loc(e['loc'])}: {e['msg']}" for e in exc.errors()]
    problems: list[str] = []
    _extras(value, "", problems)
    # TypedDicts (request params) drop unknown keys instead of keeping them as extras.
    _lost(data, dumped, "", problems)
    return problems


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(root)"


def _extras(value: Any, path: str, problems: list[str]) -> None:
    if isinstance(value, BaseModel):
        for name in value.model_extra or {}:
            problems.append(f"{path}.{name}: not a field of {type(value).__name__}")
        for name in value.model_fields_set:
            _extras(getattr(value, name), f"{path}.{name}", problems)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _extras(item, f"{path}[{i}]", problems)
    elif isinstance(value, dict):
        for key, item in value.items():
            _extras(item, f"{path}.{key}", problems)


def _lost(data: Any, dumped: Any, path: str, problems: list[str]) -> None:
    if isinstance(data, dict) and isinstance(dumped, dict):
        for key, item in data.items():
            if key not in dumped:
                problems.append(f"{path}.{key}: not a field")
            else:
                _lost(item, dumped[key], f"{path}.{key}", problems)
    elif isinstance(data, list) and isinstance(dumped, list):
        for i, (item, out) in enumerate(zip(data, dumped, strict=False)):
            _lost(item, out, f"{path}[{i}]", problems)


class Strict(BaseModel):
    """Base for the few list/error wrappers the SDKs have no public model for."""

    model_config = ConfigDict(extra="forbid")


# --- documented field lists (Gemini, Ollama, Azure errors) -------------------------------


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def shape_problems(
    value: Any,
    schema: dict[str, dict[str, Any]],
    type_name: str,
    children: dict[tuple[str, str], str],
    path: str = "",
) -> list[str]:
    """Fields of `value` that the documented object `type_name` lacks or types differently,
    following `children` ((type, field) -> type of the field's object or array items)."""
    if not isinstance(value, dict):
        return [f"{path or '(root)'}: {type_name} should be an object, got {json_type(value)}"]
    fields = schema[type_name]
    problems = []
    for key, item in value.items():
        where = f"{path}.{key}"
        if key not in fields:
            problems.append(f"{where}: not a documented field of {type_name}")
            continue
        allowed = fields[key] if isinstance(fields[key], list) else [fields[key]]
        actual = json_type(item)
        if actual not in allowed and not (actual == "integer" and "number" in allowed):
            problems.append(f"{where}: {actual}, documented as {'/'.join(allowed)}")
            continue
        child = children.get((type_name, key))
        if child is None:
            continue
        items = item if isinstance(item, list) else [item]
        for i, sub in enumerate(items):
            sub_path = f"{where}[{i}]" if isinstance(item, list) else where
            problems.extend(shape_problems(sub, schema, child, children, sub_path))
    return problems


# Free-form objects (tool arguments and schemas, function results): their keys are data.
OPAQUE = frozenset({"input", "arguments", "args", "response", "parameters", "input_schema"})


def shape_diff(published: Any, ours: Any, path: str = "") -> tuple[list[str], list[str]]:
    """(fields the published example has and ours lacks, fields whose JSON types differ),
    comparing objects key by key, lists of equal length item by item, and otherwise every
    item of ours with the example's first item."""
    missing: list[str] = []
    differ: list[str] = []
    if isinstance(published, dict) and isinstance(ours, dict):
        for key, item in published.items():
            if key not in ours:
                missing.append(f"{path}.{key}")
                continue
            if key in OPAQUE:
                continue
            sub_missing, sub_differ = shape_diff(item, ours[key], f"{path}.{key}")
            missing += sub_missing
            differ += sub_differ
    elif isinstance(published, list) and isinstance(ours, list):
        if published and ours:
            pairs = (
                zip(published, ours, strict=True)
                if len(published) == len(ours)
                else ((published[0], item) for item in ours)
            )
            for i, (theirs, item) in enumerate(pairs):
                sub_missing, sub_differ = shape_diff(theirs, item, f"{path}[{i}]")
                missing += sub_missing
                differ += sub_differ
    elif published is not None and ours is not None:
        a, b = json_type(published), json_type(ours)
        if a != b and {a, b} != {"integer", "number"}:
            differ.append(f"{path}: {b}, published {a}")
    return missing, differ


def all_keys(value: Any, path: str = "") -> Iterator[str]:
    """Every object key path in `value`, list items merged ("a[].b")."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield f"{path}.{key}"
            yield from all_keys(item, f"{path}.{key}")
    elif isinstance(value, list):
        for item in value:
            yield from all_keys(item, f"{path}[]")


# --- a loopback server that answers with the published examples --------------------------


class Replay(FakeUpstream):
    """Answers each request with the next queued (status, body, content type), byte for
    byte; streaming content types go out chunked, as the real APIs send them."""

    STREAMING: ClassVar[frozenset[str]] = frozenset({"text/event-stream", "application/x-ndjson"})

    def __init__(self) -> None:
        super().__init__()
        self.answers: deque[tuple[int, bytes, str]] = deque()

    def play(self, body: bytes, content_type: str = "application/json", status: int = 200) -> None:
        self.answers.append((status, body, content_type))

    def reset(self) -> None:
        super().reset()
        self.answers.clear()

    def _handle(self, ex: Exchange) -> None:
        with self._lock:
            self.calls.append(
                RecordedCall(
                    ex.method, ex.path, ex.query, ex.headers, ex.json, "replay", ex.connection
                )
            )
        status, body, content_type = self.answers.popleft()
        if status == 200 and content_type in self.STREAMING:
            ex.start_stream(content_type)
            ex.write(body)
            ex.end()
        else:
            ex.send_bytes(status, body, content_type)


# --- the documented objects of Gemini and Ollama, and how they nest --------------------

GEMINI_CHILDREN = {
    ("GenerateContentResponse", "candidates"): "Candidate",
    ("GenerateContentResponse", "usageMetadata"): "UsageMetadata",
    ("GenerateContentResponse", "promptFeedback"): "PromptFeedback",
    ("Candidate", "content"): "Content",
    ("Content", "parts"): "Part",
    ("Part", "functionCall"): "FunctionCall",
    ("Part", "functionResponse"): "FunctionResponse",
    ("Part", "inlineData"): "Blob",
    ("Part", "fileData"): "FileData",
    ("GenerateContentRequest", "contents"): "Content",
    ("GenerateContentRequest", "systemInstruction"): "Content",
    ("GenerateContentRequest", "generationConfig"): "GenerationConfig",
    ("GenerateContentRequest", "tools"): "Tool",
    ("GenerateContentRequest", "toolConfig"): "ToolConfig",
    ("Tool", "functionDeclarations"): "FunctionDeclaration",
    ("ToolConfig", "functionCallingConfig"): "FunctionCallingConfig",
    ("Error", "error"): "Status",
    ("BatchEmbedContentsResponse", "embeddings"): "ContentEmbedding",
    ("ListModelsResponse", "models"): "Model",
}
OLLAMA_CHILDREN = {
    ("ChatRequest", "messages"): "ChatMessage",
    ("ChatRequest", "tools"): "ToolDefinition",
    ("ChatRequest", "options"): "ModelOptions",
    ("ChatMessage", "tool_calls"): "ToolCall",
    ("ToolCall", "function"): "ToolCallFunction",
    ("ChatResponse", "message"): "ResponseMessage",
    ("ChatStreamEvent", "message"): "ResponseMessage",
    ("ResponseMessage", "tool_calls"): "ToolCall",
    ("ListResponse", "models"): "ModelSummary",
}


def gemini(value: Any, type_name: str) -> list[str]:
    schema = fixture("gemini/schema.json")
    schema["Error"] = {"error": "object"}  # the {"error": Status} envelope
    return shape_problems(value, schema, type_name, GEMINI_CHILDREN)


def ollama(value: Any, type_name: str) -> list[str]:
    return shape_problems(value, fixture("ollama/schema.json"), type_name, OLLAMA_CHILDREN)


def ollama_event(event: dict[str, Any]) -> list[str]:
    # The final event of a stream carries the ChatResponse statistics.
    return ollama(event, "ChatResponse" if event.get("done") else "ChatStreamEvent")
