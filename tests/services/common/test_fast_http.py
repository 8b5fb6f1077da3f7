"""The services' aiohttp client against a real loopback server: httpx's types in, httpx's types out."""

from __future__ import annotations

import asyncio
import json
import socket

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from services.common.fast_http import WireClient


async def echo(request: web.Request) -> web.Response:
    body = await request.read()
    answer = {
        "method": request.method,
        "query": dict(request.query),
        "body": body.decode(),
        "content_type": request.headers.get("Content-Type"),
        "deadline": request.headers.get("X-Blackout-Deadline-Ms"),
    }
    return web.json_response(answer, status=int(request.query.get("status", 200)), headers={"X-Blackout-Calls": "3"})


CONNECTIONS: set[int] = set()


async def who(request: web.Request) -> web.Response:
    CONNECTIONS.add(id(request.transport))
    return web.json_response({"connection": id(request.transport)})


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(0.5)
    return web.json_response({"late": True})


async def chunked(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    for part in (b'{"parts":', b" [1, 2", b", 3]}"):
        await response.write(part)
    await response.write_eof()
    return response


async def hang_up(request: web.Request) -> web.StreamResponse:
    assert request.transport is not None
    request.transport.close()  # no answer at all: the connection just drops
    return web.Response()


def run_with_server(body) -> object:
    async def main() -> object:
        app = web.Application()
        app.router.add_route("*", "/echo", echo)
        app.router.add_get("/hang-up", hang_up)
        app.router.add_get("/who", who)
        app.router.add_get("/slow", slow)
        app.router.add_get("/chunked", chunked)
        server = TestServer(app, host="127.0.0.1", port=0)
        await server.start_server()
        client = WireClient()
        try:
            return await body(client, f"http://127.0.0.1:{server.port}")
        finally:
            await client.aclose()
            await server.close()

    return asyncio.run(main())


def test_a_request_carries_params_json_and_headers_and_answers_like_an_httpx_response():
    async def body(client: WireClient, base: str) -> None:
        answer = await client.request(
            "POST", base + "/echo", params={"limit": 30}, json={"a": [1, 2]}, headers={"X-Blackout-Deadline-Ms": "250"}
        )
        assert answer.status_code == 200
        assert answer.headers["x-blackout-calls"] == "3"  # case-insensitive, as httpx's
        got = answer.json()
        assert got["method"] == "POST" and got["query"] == {"limit": "30"} and json.loads(got["body"]) == {"a": [1, 2]}
        assert got["content_type"] == "application/json" and got["deadline"] == "250"
        assert await answer.aread() == answer.content and answer.text == answer.content.decode()

    run_with_server(body)


def test_a_4xx_or_5xx_is_an_answer_not_an_error():
    async def body(client: WireClient, base: str) -> None:
        assert (await client.request("GET", base + "/echo", params={"status": 422})).status_code == 422
        assert (await client.request("GET", base + "/echo", params={"status": 503})).status_code == 503

    run_with_server(body)


def test_a_refused_connection_is_httpx_connect_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = sock.getsockname()[1]

        async def body(client: WireClient, base: str) -> None:
            with pytest.raises(httpx.ConnectError):
                await client.request("GET", f"http://127.0.0.1:{port}/x")

        run_with_server(body)


def test_a_dropped_connection_is_an_httpx_transport_error():
    async def body(client: WireClient, base: str) -> None:
        with pytest.raises(httpx.TransportError):
            await client.request("GET", base + "/hang-up")

    run_with_server(body)


def test_connections_are_kept_alive_and_reused_one_request_at_a_time():
    async def body(client: WireClient, base: str) -> None:
        first = [(await client.request("GET", base + "/who")).json()["connection"] for _ in range(5)]
        assert len(set(first)) == 1  # sequential calls: one connection
        both = await asyncio.gather(client.request("GET", base + "/who"), client.request("GET", base + "/who"))
        assert len({a.json()["connection"] for a in both}) == 2  # concurrent calls never share one

    run_with_server(body)


def test_a_chunked_answer_is_read_whole():
    async def body(client: WireClient, base: str) -> None:
        assert (await client.request("GET", base + "/chunked")).json() == {"parts": [1, 2, 3]}

    run_with_server(body)


def test_a_cancelled_request_closes_its_connection_and_the_next_one_is_not_confused():
    async def body(client: WireClient, base: str) -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await client.request("GET", base + "/slow")
        await asyncio.sleep(0.6)  # the late answer arrives now, on a closed connection
        assert (await client.request("GET", base + "/echo")).json()["method"] == "GET"

    run_with_server(body)


def test_a_connection_idle_too_long_is_not_reused(monkeypatch):
    import services.common.fast_http as fast_http

    async def body(client: WireClient, base: str) -> None:
        first = (await client.request("GET", base + "/who")).json()["connection"]
        monkeypatch.setattr(fast_http, "IDLE_S", 0.0)
        assert (await client.request("GET", base + "/who")).json()["connection"] != first

    run_with_server(body)


def test_a_header_with_a_line_break_is_refused_before_sending():
    async def body(client: WireClient, base: str) -> None:
        with pytest.raises(httpx.LocalProtocolError):
            await client.request("GET", base + "/echo", headers={"Authorization": "Bearer x\r\nX-Evil: 1"})

    run_with_server(body)
