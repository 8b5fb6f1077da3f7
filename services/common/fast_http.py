"""The HTTP client services call each other with: HTTP/1.1 over asyncio, parsed by httptools (uvicorn's
own parser), answering under httpx.Response's names.

Why not httpx (over its own or aiohttp's transport): its request pipeline (URL and header models,
cookies, auth and redirect hooks) cost ~0.3 ms of CPU per call here. Why not aiohttp then: its client
still builds a URL object, a multidict of headers, a payload, a writer and a response per call:
0.22 ms against 0.07 ms for this one, and a feed makes four calls. The services need little of HTTP:
plain http to known hosts, keep-alive, Content-Length or chunked answers. Tests still hand the
services an ``httpx.AsyncClient`` over an ``httpx.MockTransport`` (see ``make_http_client``).

Connections are kept per origin and reused one request at a time (LIFO, so the warm ones stay warm).
One that is idle longer than ``IDLE_S`` is not reused: uvicorn closes idle connections after 5 s, and
a request sent into that closing would fail for nothing. A request that does not complete (cancelled
by the caller's timeout, refused, cut) closes its connection: its answer may still come, and must not
be read as the next request's. Failures are httpx's errors, as callers expect.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, Protocol, cast
from urllib.parse import urlencode, urlsplit

import httptools
import httpx
import orjson

IDLE_S = 4.0  # below uvicorn's keep-alive timeout (5 s)
MAX_CONNECTIONS = 256


class HttpClient(Protocol):
    """What services need of an HTTP client (httpx.AsyncClient has it too)."""

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> Reply: ...

    async def aclose(self) -> None: ...


class Headers(dict[str, Any]):
    """Answer headers by lower-case name; ``get``/``[]`` take any case (as httpx's do)."""

    def get(self, key: str, default: Any = None) -> Any:
        return dict.get(self, key.lower(), default)

    def __getitem__(self, key: str) -> Any:
        return dict.__getitem__(self, key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and dict.__contains__(self, key.lower())


class Answer:
    """What services read of an answer, under httpx.Response's names."""

    __slots__ = ("status_code", "headers", "content")

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    async def aread(self) -> bytes:
        return self.content

    def json(self) -> Any:
        return orjson.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


# What a call answers: an Answer on the wire, an httpx.Response from a test's transport or an injected fault
Reply = httpx.Response | Answer


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Answer] | None = None
        self.closed = False
        self.idle_since = 0.0
        self._headers = Headers()
        self._body: list[bytes] = []

    # -- asyncio.Protocol -----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # a stream connection's transport is one

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed answer: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(httpx.ReadError("connection closed before the answer was complete"))

    # -- httptools callbacks --------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self._headers[key] = f"{self._headers[key]}, {text}" if key in self._headers else text

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        answer = Answer(self.parser.get_status_code(), self._headers, b"".join(self._body))
        self._headers, self._body = Headers(), []
        if not self.parser.should_keep_alive():
            self.close()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(answer)

    # -- use ------------------------------------------------------------------------------------
    def send(self, data: bytes) -> asyncio.Future[Answer]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, error: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(error)


class WireClient:
    def __init__(self, max_connections: int = MAX_CONNECTIONS, headers: Mapping[str, str] | None = None) -> None:
        """``headers``: sent with every request (the service credential), rendered once here."""
        self._fixed = "".join(_header_line(name, value) for name, value in (headers or {}).items())
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._origins: dict[str, tuple[str, int]] = {}
        self._slots = asyncio.Semaphore(max_connections)

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> Answer:
        origin, target = self._split(url)
        if params:
            target += ("&" if "?" in target else "?") + urlencode(params)
        body = orjson.dumps(json) if json is not None else (content or b"")
        lines = [
            f"{method} {target} HTTP/1.1\r\nHost: {origin[0]}:{origin[1]}\r\nContent-Length: {len(body)}\r\n",
            self._fixed,
        ]
        if json is not None:
            lines.append("Content-Type: application/json\r\n")
        for name, value in (headers or {}).items():
            lines.append(_header_line(name, value))
        lines.append("\r\n")
        data = "".join(lines).encode("latin-1") + body
        async with self._slots:
            conn = await self._connection(origin)
            try:
                answer = await conn.send(data)
            except BaseException:  # cancelled, refused, cut: the connection is in an unknown state
                conn.close()
                raise
            if not conn.closed:
                conn.idle_since = time.monotonic()
                self._idle.setdefault(origin, []).append(conn)
            return answer

    def _split(self, url: str) -> tuple[tuple[str, int], str]:
        slash = url.find("/", url.find("//") + 2)
        base, target = (url, "/") if slash == -1 else (url[:slash], url[slash:])
        origin = self._origins.get(base)
        if origin is None:
            parts = urlsplit(base)
            if parts.scheme != "http" or not parts.hostname:
                raise httpx.UnsupportedProtocol(f"only http://host:port URLs, not {base!r}")
            origin = self._origins[base] = (parts.hostname, parts.port or 80)
        return origin, target

    async def _connection(self, origin: tuple[str, int]) -> _Connection:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < IDLE_S:
                return conn
            conn.close()
        try:
            _, conn = await asyncio.get_running_loop().create_connection(_Connection, *origin)
        except OSError as exc:
            raise httpx.ConnectError(f"{origin[0]}:{origin[1]}: {exc.strerror or exc}") from exc
        return conn

    async def aclose(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()


def _header_line(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:  # a header that would end the header block early
        raise httpx.LocalProtocolError(f"header {name!r} holds a line break")
    return f"{name}: {value}\r\n"
