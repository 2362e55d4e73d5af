"""Fake LLM upstreams speaking each provider's real wire format over real loopback HTTP: the
server, the recording of calls and the fault scenarios. One module per wire format
(openai, azure, anthropic, gemini, ollama) subclasses `FakeUpstream`; tests/fakes/scenarios.py
says what they answer.

One server serves many tests. The scenario for a request is, in order of precedence:
1. the next entry queued with `server.set_script([...])` (one entry per request, any path),
2. the server-wide default set with `server.set_default(name)`,
3. the requested model name if it is a scenario name (the part after the last "/", so
   "models/fake-429" and "acme/fake-429" work), e.g. model="fake-429",
4. otherwise "fake-ok".
The model is the body's `model` (OpenAI, Anthropic, Ollama) or the URL's model / deployment
(Gemini, Azure).
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.fakes.scenarios import (
    ERROR_STATUS,
    SCENARIOS,
    TIMEOUT_SLEEP,
    Answer,
    Prompt,
    make_answer,
)


@dataclass
class RecordedCall:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    json: Any  # parsed body, None when absent or not JSON
    scenario: str
    connection: int  # which TCP connection carried it (1, 2, ...): shows keep-alive reuse


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

    def wait_for_peer_close(self, ex: Exchange, seconds: float) -> bool:
        """Hold ``ex`` open until the peer closes its connection (True) or ``seconds`` pass
        or the server stops (False); then drop it."""
        sock = ex.handler.connection
        deadline = time.monotonic() + seconds
        closed = False
        while time.monotonic() < deadline and not self._stopping.is_set():
            readable, _, _ = select.select([sock], [], [], 0.02)
            if not readable:
                continue
            try:
                peek = sock.recv(1, socket.MSG_PEEK)
            except OSError:
                peek = b""
            if not peek:
                closed = True
                break
        ex.drop()
        return closed

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
