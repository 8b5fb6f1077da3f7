"""The HTTP client services call each other with: aiohttp directly, answering with httpx.Response.

Why not httpx over an aiohttp transport: httpx's own request pipeline (URL and header models,
cookies, auth and redirect hooks, event hooks) cost about 0.3 ms of CPU per call here, more than
aiohttp's whole round trip, and a feed makes four such calls. Callers keep httpx's types (a
``httpx.Response``, ``httpx.HTTPError`` subclasses on failure), so tests can still hand the services
an ``httpx.AsyncClient`` over an ``httpx.MockTransport`` instead (see ``make_http_client``).
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

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response: ...

    async def aclose(self) -> None: ...


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
    ) -> httpx.Response:
        session = self._session or self._open()
        data = content
        if json is not None:
            data = orjson.dumps(json)
            headers = {**(headers or {}), "Content-Type": "application/json"}
        try:
            async with session.request(method, url, params=params, data=data, headers=headers) as answer:
                body = await answer.read()
                return httpx.Response(answer.status, headers=answer.raw_headers, content=body)
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
