"""Fake LLM upstreams speaking each provider's real wire format over real loopback HTTP.

One server serves many tests. The scenario for a request is, in order of precedence:
1. the next entry queued with `server.set_script([...])` (one entry per request, any path),
2. the server-wide default set with `server.set_default(name)`,
3. the requested model name if it is a scenario name (the part after the last "/", so
   "models/fake-429" and "acme/fake-429" work), e.g. model="fake-429",
4. otherwise "fake-ok".
The model is the body's `model` (OpenAI, Anthropic, Ollama) or the URL's model / deployment
(Gemini, Azure).

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

import base64
import hashlib
import json
import re
import socket
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote, unquote, urlsplit

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
class RecordedCall:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    json: Any  # parsed body, None when absent or not JSON
    scenario: str
    connection: int  # which TCP connection carried it (1, 2, ...): shows keep-alive reuse


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


def _stops(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [s for s in value if isinstance(s, str)]


class Exchange:
    """One request on the server side, with helpers to answer it (or to misbehave)."""

    def __init__(self, handler: _Handler, path: str, query: dict[str, str], body: Any) -> None:
        self.handler = handler
        self.method = handler.command
        self.path = path
        self.query = query
        self.headers = {k.lower(): v for k, v in handler.headers.items()}
        self.json = body
        self.connection: int = handler.connection_number

    def send_bytes(
        self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        h = self.handler
        h.send_response(status)
        h.send_header("content-type", content_type)
        h.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.end_headers()
        h.wfile.write(data)
        h.wfile.flush()

    def send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self.send_bytes(status, json.dumps(obj).encode(), "application/json", headers)

    def send_partial(self, data: bytes, content_type: str) -> None:
        """Promise the whole body, send half of it, then drop the connection."""
        h = self.handler
        h.send_response(200)
        h.send_header("content-type", content_type)
        h.send_header("content-length", str(len(data)))
        h.end_headers()
        h.wfile.write(data[: len(data) // 2])
        self.drop()

    def start_stream(self, content_type: str) -> None:
        h = self.handler
        h.send_response(200)
        h.send_header("content-type", content_type)
        h.send_header("transfer-encoding", "chunked")
        h.send_header("cache-control", "no-cache")
        h.end_headers()
        h.wfile.flush()

    def write(self, data: bytes) -> None:
        self.handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.handler.wfile.flush()

    def end(self) -> None:
        self.handler.wfile.write(b"0\r\n\r\n")
        self.handler.wfile.flush()

    def drop(self) -> None:
        h = self.handler
        h.close_connection = True
        try:
            h.wfile.flush()
            h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeUpstream


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like real providers
    # Headers and body go out in separate writes; with Nagle + delayed ACK each small
    # response would stall ~40 ms.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.connection_number = self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.fake._track(self.connection, add=False)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        url = urlsplit(self.path)
        exchange = Exchange(self, unquote(url.path), dict(parse_qsl(url.query)), body)
        try:
            self.server.fake._handle(exchange)
        except OSError:
            self.close_connection = True  # the client went away (timeout test); fine


class FakeUpstream:
    """Base class: a threaded HTTP/1.1 server on 127.0.0.1 with a random free port."""

    wire: ClassVar[str] = ""
    stream_content_type: ClassVar[str] = "text/event-stream"

    def __init__(self, *, slow_first_byte: float = 1.0) -> None:
        self._initial_slow_first_byte = slow_first_byte
        self.slow_first_byte = slow_first_byte  # seconds "fake-slow-first-byte" waits
        self.calls: list[RecordedCall] = []
        self._script: deque[str] = deque()
        self._default: str | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connection_count = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> FakeUpstream:
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes "fake-timeout" / "fake-slow-first-byte" sleepers
        if self._server is not None:
            self._server.shutdown()
            with self._lock:
                connections = list(self._connections)
            for conn in connections:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def root_url(self) -> str:
        assert self._server is not None, "server not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        """The value to use as ProviderTarget.base_url for this wire format."""
        return self.root_url

    # --- programming ---------------------------------------------------------------------

    def set_script(self, scenarios: Iterable[str]) -> None:
        """Queue scenarios for the next requests, one each, before model-based selection."""
        queued = list(scenarios)
        unknown = [s for s in queued if s not in SCENARIOS]
        if unknown:
            raise ValueError(f"unknown scenarios {unknown}; known: {sorted(SCENARIOS)}")
        with self._lock:
            self._script = deque(queued)

    def set_default(self, scenario: str | None) -> None:
        """Answer every request without a scripted scenario with this one (None: by model)."""
        if scenario is not None and scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}")
        self._default = scenario

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self._script.clear()
        self._default = None
        self.slow_first_byte = self._initial_slow_first_byte

    @property
    def last_call(self) -> RecordedCall:
        return self.calls[-1]

    def _track(self, conn: socket.socket, *, add: bool) -> int:
        with self._lock:
            if add:
                self._connections.add(conn)
                self._connection_count += 1
            else:
                self._connections.discard(conn)
            return self._connection_count

    def _choose(self, model: str | None) -> str:
        with self._lock:
            if self._script:
                return self._script.popleft()
        if self._default is not None:
            return self._default
        name = (model or "").rsplit("/", 1)[-1]
        return name if name in SCENARIOS else "fake-ok"

    # --- request handling ----------------------------------------------------------------

    def _handle(self, ex: Exchange) -> None:
        route = self.route(ex)
        if route is None:
            body, headers = self.error_body("fake-404", 404, None)
            ex.send_json(404, body, headers)
            return
        op, model = route
        scenario = self._choose(model)
        with self._lock:
            self.calls.append(
                RecordedCall(
                    ex.method, ex.path, ex.query, ex.headers, ex.json, scenario, ex.connection
                )
            )
        auth_error = self.auth_error(ex)
        if auth_error is not None:
            ex.send_json(*auth_error)
            return
        if scenario == "fake-timeout":
            self._stopping.wait(TIMEOUT_SLEEP)
            ex.drop()
            return
        if scenario == "fake-slow-first-byte":
            if self._stopping.wait(self.slow_first_byte):
                ex.drop()
                return
            scenario = "fake-ok"
        if scenario in ERROR_STATUS:
            status = self.error_status(scenario)
            body, headers = self.error_body(scenario, status, model, ex)
            ex.send_json(status, body, headers)
            return
        if op == "models":
            ex.send_json(200, self.models_body())
            return
        if op == "embed":
            if scenario == "fake-malformed":
                ex.send_bytes(200, b'{"data": [', "application/json")
                return
            ex.send_json(200, self.embed_body(ex.json or {}, model or ""))
            return
        answer = make_answer(self.parse_prompt(ex.json or {}), scenario)
        usage = scenario != "fake-no-usage"
        if op == "stream":
            events = self.stream_events(ex, answer, model or "", usage=usage)
            self._send_stream(ex, events, scenario)
            return
        data = json.dumps(self.completion_body(answer, model or "", usage=usage)).encode()
        if scenario == "fake-malformed":
            ex.send_bytes(200, b'{"id": "broken", "choices": [', "application/json")
        elif scenario == "fake-cut-stream":
            ex.send_partial(data, "application/json")
        elif scenario == "fake-truncated-stream":
            ex.send_bytes(200, data[: len(data) // 2], "application/json")
        else:
            ex.send_bytes(200, data, "application/json")

    def _send_stream(self, ex: Exchange, events: list[bytes], scenario: str) -> None:
        ex.start_stream(self.stream_content_type)
        # Enough to have started, never the terminal event.
        half = min(max(2, len(events) // 2), len(events) - 1)
        if scenario == "fake-cut-stream":
            for event in events[:half]:
                ex.write(event)
            ex.drop()
            return
        if scenario == "fake-truncated-stream":
            sent = events[:half]
        elif scenario == "fake-malformed":
            sent = [*events[:2], self.malformed_event()]
        elif scenario == "fake-stream-error":
            sent = [*events[:2], self.stream_error_event()]
        else:
            sent = events
        for event in sent:
            ex.write(event)
        ex.end()

    # --- per wire format -----------------------------------------------------------------

    def route(self, ex: Exchange) -> tuple[str, str | None] | None:
        """(operation: chat|stream|embed|models, model) for a known path, else None."""
        raise NotImplementedError

    def auth_error(self, ex: Exchange) -> tuple[int, Any] | None:
        return None

    def error_status(self, scenario: str) -> int:
        return ERROR_STATUS[scenario]

    def error_body(
        self, scenario: str, status: int, model: str | None, ex: Exchange | None = None
    ) -> tuple[Any, dict[str, str]]:
        raise NotImplementedError

    def parse_prompt(self, body: Any) -> Prompt:
        raise NotImplementedError

    def completion_body(self, answer: Answer, model: str, *, usage: bool) -> Any:
        raise NotImplementedError

    def stream_events(
        self, ex: Exchange, answer: Answer, model: str, *, usage: bool
    ) -> list[bytes]:
        raise NotImplementedError

    def embed_body(self, body: Any, model: str) -> Any:
        raise NotImplementedError

    def models_body(self) -> Any:
        raise NotImplementedError

    def malformed_event(self) -> bytes:
        return b'data: {"choices": [{"delta": \n\n'

    def stream_error_event(self) -> bytes:
        raise NotImplementedError


def sse(obj: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(obj)}\n\n".encode()


def retry_headers(status: int) -> dict[str, str]:
    return {"retry-after": "1"} if status == 429 else {}


# --- OpenAI (and Azure OpenAI) -------------------------------------------------------------


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
        prompt.stops = _stops(body.get("stop"))
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


class FakeAzureOpenAI(FakeOpenAI):
    """The same server; `base_url` is the resource root Azure targets are configured with."""

    wire = "azure"

    @property
    def base_url(self) -> str:
        return self.root_url


# --- Anthropic Messages ------------------------------------------------------------------


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
        prompt.stops = _stops(body.get("stop_sequences"))
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
            "data": [{"type": "model", "id": "fake-ok", "display_name": "Fake"}],
            "has_more": False,
            "first_id": "fake-ok",
            "last_id": "fake-ok",
        }


# --- Google Gemini -----------------------------------------------------------------------


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
        prompt.stops = _stops(config.get("stopSequences"))
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
                event([]),
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


# --- Ollama ------------------------------------------------------------------------------


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
        prompt.stops = _stops(options.get("stop"))
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


FAKES: dict[str, type[FakeUpstream]] = {
    "openai": FakeOpenAI,
    "azure": FakeAzureOpenAI,
    "anthropic": FakeAnthropic,
    "gemini": FakeGemini,
    "ollama": FakeOllama,
}
