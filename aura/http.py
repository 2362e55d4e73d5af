"""The one outbound-HTTP seam: shared client, timeouts, and httpx-error classification.

Every provider call goes through here so that swapping or instrumenting the HTTP library is
a one-file change. Timeouts are three numbers: `connect`, `first_byte` (httpx's read timeout,
so it bounds the wait for headers and every later read) and `total` (a wall-clock deadline
for the whole exchange, stream included).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import ipaddress
import json
import socket
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from aura.netguard import refused_reason


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 5.0
    first_byte: float = 30.0  # time to response headers / first stream event
    total: float = 120.0


ERROR_KINDS = frozenset(
    {
        "rate_limit",
        "server",
        "timeout",
        "connection",
        "bad_request",
        "auth",
        "not_found",
        "malformed",
        "context_length",
        "content_filter",
    }
)


class ProviderError(Exception):
    """A classified upstream failure. The message never contains the API key."""

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        status: int | None = None,
        retryable: bool,
        retry_after: float | None = None,
        provider_code: str | None = None,
    ) -> None:
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown ProviderError kind {kind!r}")
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.provider_code = provider_code

    def __repr__(self) -> str:
        return (
            f"ProviderError({self.message!r}, kind={self.kind!r}, status={self.status!r}, "
            f"retryable={self.retryable!r}, retry_after={self.retry_after!r})"
        )


DRAIN_SECONDS = 1.0
# http1 only: httpx's default, and h2 multiplexing would need the extra h2 dependency.
LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=200, keepalive_expiry=30)

# httpx clients bind their connection pool to the loop that first used them, so each running
# loop (uvicorn has one; every asyncio.run in tests makes a new one) gets its own client.
_clients: dict[int, tuple[asyncio.AbstractEventLoop, httpx.AsyncClient]] = {}


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle takes tens of ms; build it once, not once per event loop.
    return httpx.create_ssl_context()


def get_client() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    entry = _clients.get(id(loop))
    if entry is not None and entry[0] is loop:
        return entry[1]
    # Dead loops' clients cannot be closed any more; dropping them lets the sockets be GC'd.
    for key, (other, _) in list(_clients.items()):
        if other.is_closed():
            del _clients[key]
    client = httpx.AsyncClient(limits=LIMITS, trust_env=False, verify=_ssl_context())
    _clients[id(loop)] = (loop, client)
    return client


async def aclose_client() -> None:
    """Close the current loop's client (call on shutdown, and at the end of each test loop)."""
    entry = _clients.pop(id(asyncio.get_running_loop()), None)
    if entry is not None:
        await entry[1].aclose()


def _httpx_timeout(t: Timeouts) -> httpx.Timeout:
    # Waiting for a free pooled connection counts as connecting: fail fast so fallback can act.
    return httpx.Timeout(connect=t.connect, read=t.first_byte, write=t.first_byte, pool=t.connect)


def map_exception(exc: BaseException, url: str) -> ProviderError:
    host = urlsplit(url).netloc or url  # never the query string: it may carry credentials
    name = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return ProviderError(f"timeout talking to {host} ({name})", kind="timeout", retryable=True)
    if isinstance(exc, httpx.DecodingError):
        return ProviderError(f"undecodable body from {host}", kind="malformed", retryable=True)
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return ProviderError(f"bad upstream URL for {host}", kind="connection", retryable=False)
    # ConnectError, ReadError, RemoteProtocolError (peer closed mid-body) and the rest.
    return ProviderError(f"connection to {host} failed ({name})", kind="connection", retryable=True)


@dataclass(slots=True)
class HttpResponse:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes


def _encode(
    body: Mapping[str, Any] | None, headers: Mapping[str, str]
) -> tuple[bytes | None, dict[str, str]]:
    out = dict(headers)
    if body is None:
        return None, out
    out.setdefault("content-type", "application/json")
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(), out


_URLS: dict[str, httpx.URL] = {}
_TIMEOUTS: dict[Timeouts, dict[str, float | None]] = {}


def _url(url: str) -> httpx.URL:
    # Parsing a URL is a measurable share of a request's CPU; upstream URLs repeat.
    parsed = _URLS.get(url)
    if parsed is None:
        if len(_URLS) > 4096:
            _URLS.clear()
        parsed = _URLS[url] = httpx.URL(url)
    return parsed


def _timeout_ext(t: Timeouts) -> dict[str, float | None]:
    ext = _TIMEOUTS.get(t)
    if ext is None:
        ext = _TIMEOUTS[t] = _httpx_timeout(t).as_dict()
    return ext


# Set (by routing.gateway.execution) around calls to tenant-controlled endpoints: the request must
# reach a public address, checked on the address actually connected to.
public_only: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "aura_http_public_only", default=False
)
PIN_TTL = 30.0
_pins: dict[tuple[str, int], tuple[str, float]] = {}


async def _public_address(host: str, port: int) -> str:
    """Resolve ``host`` and return one of its addresses, refusing if any is not public.

    The result is cached for PIN_TTL seconds and the connection is made to that very
    address, so a name re-pointed after the check (DNS rebinding) cannot reach an
    internal host.
    """
    loop = asyncio.get_running_loop()
    cached = _pins.get((host, port))
    if cached is not None and cached[1] > loop.time():
        return cached[0]
    try:
        literal: Any = ipaddress.ip_address(host)
        addresses = [str(literal)]
    except ValueError:
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise ProviderError(
                f"cannot resolve {host}: {exc}", kind="connection", retryable=True
            ) from None
        addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        reason = refused_reason(ipaddress.ip_address(address.split("%", 1)[0]))
        if reason is not None:
            raise ProviderError(
                f"{host} resolves to a {reason} address; tenant endpoints must be public",
                kind="connection",
                retryable=False,
            )
    if len(_pins) > 4096:
        _pins.clear()
    _pins[(host, port)] = (addresses[0], loop.time() + PIN_TTL)
    return addresses[0]


async def _request(
    method: str, url: str, content: bytes | None, headers: dict[str, str], timeouts: Timeouts
) -> httpx.Request:
    target = _url(url)
    extensions: dict[str, Any] = {"timeout": _timeout_ext(timeouts)}
    if public_only.get():
        host = target.host
        address = await _public_address(
            host, target.port or (443 if target.scheme == "https" else 80)
        )
        if address != host:
            headers = {**headers, "host": target.netloc.decode("ascii")}
            if target.scheme == "https":
                extensions["sni_hostname"] = host
            target = target.copy_with(host=address)
    return httpx.Request(method, target, content=content, headers=headers, extensions=extensions)


async def request_json(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    json: Mapping[str, Any] | None = None,
    timeouts: Timeouts,
) -> HttpResponse:
    """Send one request and read the whole body. Any status is returned, not raised.

    Goes straight to the client's transport (connection pool): the client layers above it
    (cookie jar, auth flow, redirects, event hooks) do nothing for an API call but cost
    about a fifth of the gateway's CPU per request.
    """
    transport = get_client()._transport
    content, hdrs = _encode(json, headers)
    request = await _request(method, url, content, hdrs, timeouts)
    try:
        async with asyncio.timeout(timeouts.total):
            resp = await transport.handle_async_request(request)
            try:
                body = await resp.aread()
            finally:
                await resp.aclose()
    except (httpx.HTTPError, TimeoutError) as exc:
        raise map_exception(exc, url) from None
    return HttpResponse(resp.status_code, dict(resp.headers.items()), body)


class StreamResponse:
    """An open streamed response; every read is bounded by the exchange's total deadline."""

    __slots__ = ("_deadline", "_line_iterator", "_resp", "_url", "headers", "status")

    def __init__(self, resp: httpx.Response, deadline: float, url: str) -> None:
        self._resp = resp
        self._deadline = deadline
        self._url = url
        self._line_iterator: AsyncIterator[str] | None = None
        self.status = resp.status_code
        self.headers = dict(resp.headers.items())

    async def read(self) -> bytes:
        try:
            async with asyncio.timeout_at(self._deadline):
                return await self._resp.aread()
        except (httpx.HTTPError, TimeoutError) as exc:
            raise map_exception(exc, self._url) from None

    async def lines(self) -> AsyncIterator[str]:
        """Decoded lines without their terminators; raises ProviderError on a cut or timeout."""
        iterator = self._line_iterator = self._resp.aiter_lines().__aiter__()
        while True:
            # The deadline wraps each read, not the loop: a scope spanning `yield` would cancel
            # whatever the consumer happened to be awaiting.
            try:
                async with asyncio.timeout_at(self._deadline):
                    line = await iterator.__anext__()
            except StopAsyncIteration:
                return
            except (httpx.HTTPError, TimeoutError) as exc:
                raise map_exception(exc, self._url) from None
            yield line

    async def drain(self) -> None:
        """Read the rest (the chunked trailer) so the connection returns to the pool."""
        if self._resp.is_closed:
            return
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(min(self._deadline, loop.time() + DRAIN_SECONDS)):
                if self._line_iterator is not None:
                    async for _ in self._line_iterator:
                        pass
                elif not self._resp.is_stream_consumed:
                    await self._resp.aread()
        except (httpx.HTTPError, TimeoutError):
            pass  # the connection is simply closed instead


@asynccontextmanager
async def open_stream(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    json: Mapping[str, Any] | None = None,
    timeouts: Timeouts,
) -> AsyncIterator[StreamResponse]:
    """Open a streamed request; the response is closed (connection released) on exit."""
    transport = get_client()._transport  # see request_json for why not client.send
    content, hdrs = _encode(json, headers)
    deadline = asyncio.get_running_loop().time() + timeouts.total
    request = await _request(method, url, content, hdrs, timeouts)
    try:
        async with asyncio.timeout_at(deadline):
            resp = await transport.handle_async_request(request)
    except (httpx.HTTPError, TimeoutError) as exc:
        raise map_exception(exc, url) from None
    stream = StreamResponse(resp, deadline, url)
    try:
        yield stream
    except BaseException:
        # Cancelled, consumer went away, or the adapter raised: drop the connection.
        await resp.aclose()
        raise
    await stream.drain()
    await resp.aclose()
