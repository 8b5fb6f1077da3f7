"""The HTTP client services call each other with: aiohttp directly, answering like httpx.Response.

Why not httpx over an aiohttp transport: httpx's own request pipeline (URL and header models,
cookies, auth and redirect hooks, event hooks) cost about 0.3 ms of CPU per call here, more than
aiohttp's whole round trip, and a feed makes four such calls. Callers keep httpx's names (an
``Answer`` reads like an ``httpx.Response``; failures are ``httpx.HTTPError`` subclasses), so tests
can still hand the services an ``httpx.AsyncClient`` over an ``httpx.MockTransport`` instead (see
``make_http_client``).
No timeout here: ``DependencyClient`` bounds every attempt itself.
"""
from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol

import aiohttp
import httpx
import orjson

MAX_CONNECTIONS = 256


class HttpClient(Protocol):
    """What services need of an HTTP client (httpx.AsyncClient has it too)."""

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response | Answer: ...

    async def aclose(self) -> None: ...


class Answer:
    """What services read of an answer (``httpx.Response``'s names: status_code, headers, content,
    json(), text, aread()), without building an httpx.Response, whose stream and header models cost
    as much as the rest of the client. ``headers`` is case-insensitive, as httpx's."""

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


class AiohttpClient:
    def __init__(self, max_connections: int = MAX_CONNECTIONS) -> None:
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Made on first use: a session belongs to the running event loop, which the app factory has not.
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=None),
            timeout=aiohttp.ClientTimeout(total=None),
            skip_auto_headers=("User-Agent",),
            cookie_jar=aiohttp.DummyCookieJar(),  # services set no cookies; spares a jar lookup per call
            auto_decompress=False,  # services send no compressed bodies; spares a decoder per response
        )
        return self._session

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
        session = self._session or self._open()
        data = content
        if json is not None:
            data = orjson.dumps(json)
            headers = {**(headers or {}), "Content-Type": "application/json"}
        try:
            async with session.request(method, url, params=params, data=data, headers=headers) as answer:
                return Answer(answer.status, answer.headers, await answer.read())
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(f"{type(exc).__name__}: {exc}") from exc
        except aiohttp.ServerTimeoutError as exc:
            raise httpx.ReadTimeout(str(exc)) from exc
        except (aiohttp.ClientError, asyncio.IncompleteReadError) as exc:  # a dropped connection, a bad answer
            raise httpx.ReadError(f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
