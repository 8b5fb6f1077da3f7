"""Stub gateways that cost next to nothing: every route the simulated users call, answered with a constant,
well-formed body (raw ASGI under uvicorn, one process, one listening socket per data center, loopback only).

For measuring the load generator, not the stack: no state, no token check, no JSON parsing, so what users
wait for is the generator itself. tests/fakes/gateway.py is a faithful fake (FastAPI, sessions, view counts)
but costs a FastAPI request handling per call, in the caller's own process: at thousands of requests a
second it would be what is measured.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from starlette.types import Receive, Scope, Send

from services.common.api import HEALTHZ
from services.common.seed import N_CREATORS, creator_name, video_name
from services.gateway import api as gateway
from support.child_server import child_server, listening_socket, url_of

EXPIRES_AT = 4_102_444_800.0  # 2100-01-01: a session never expires during a benchmark
BACKLOG = 4096  # thousands of users connect within seconds: a short queue would drop SYNs (1-s retries)


def _encoded(body: object) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


FEED_ITEMS = [
    {
        "video_id": video_name(n),
        "title": f"Video {n}",
        "creator_id": creator_name(n % N_CREATORS + 1),
        "source": "personalized",
        "views": n,
        "views_status": "ok",
    }
    for n in range(1, 11)
]
# (method, path or prefix) -> (status, body); a prefix ends with "/" (a path parameter follows it).
_VIEW_HEAD, _, VIEW_SUFFIX = gateway.VIEW.partition("{video_id}")  # "/videos/", "/view"
VIEW_PREFIX = ("POST", _VIEW_HEAD)
ROUTES: dict[tuple[str, str], tuple[int, bytes]] = {
    ("GET", HEALTHZ): (200, _encoded({"status": "ok"})),
    ("POST", gateway.LOGIN): (
        200,
        _encoded({"token": "stub", "user_id": "stub", "role": "viewer", "expires_at": EXPIRES_AT}),
    ),
    ("GET", gateway.FEED): (200, _encoded({"user_id": "stub", "items": FEED_ITEMS})),
    (VIEW_PREFIX[0], VIEW_PREFIX[1]): (200, _encoded({"event_id": "stub", "video_id": video_name(1), "counted": True})),
    ("POST", gateway.UPLOAD): (
        201,
        _encoded({"video_id": "video-u0001", "title": "stub", "creator_id": creator_name(1)}),
    ),
    ("GET", gateway.EARNINGS): (
        200,
        _encoded({"creator_id": "stub", "views": 1, "earnings_cents": 10, "status": "ok"}),
    ),
}
NOT_FOUND = (404, _encoded({"detail": "not found"}))


def route(method: str, path: str) -> tuple[int, bytes]:
    """The answer to a request: exact paths first, then the one prefix (``/videos/{id}/view``)."""
    exact = ROUTES.get((method, path))
    if exact is not None:
        return exact
    if method == VIEW_PREFIX[0] and path.startswith(VIEW_PREFIX[1]) and path.endswith(VIEW_SUFFIX):
        return ROUTES[VIEW_PREFIX]
    return NOT_FOUND


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    status, body = route(scope["method"], scope["path"])
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-blackout-attempts", b"1"),
        (b"x-blackout-calls", b"1"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@dataclass(frozen=True)
class StubGateways:
    urls: dict[str, str]  # data center -> base URL
    pid: int  # the one process serving them all (for its CPU figures)


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 never via a proxy


def _healthy(url: str) -> bool:
    try:
        with _NO_PROXY.open(url + HEALTHZ, timeout=1.0) as answer:
            return answer.status == 200
    except OSError:
        return False


@contextmanager
def stub_gateways(
    dcs: tuple[str, ...] = ("dc-east", "dc-west"), start_timeout_s: float = 20.0
) -> Iterator[StubGateways]:
    """Start one stub process listening for each of ``dcs`` (port 0, bound here and passed down); yield
    their URLs; stop the process (by its pid) on the way out, whatever happens."""
    socks = [listening_socket(BACKLOG) for _ in dcs]
    urls = {dc: url_of(sock) for dc, sock in zip(dcs, socks, strict=True)}
    ready = lambda: all(_healthy(url) for url in urls.values())  # noqa: E731
    with child_server(__file__, socks, ready, "the stub gateways", start_timeout_s) as pid:
        yield StubGateways(urls, pid)


def serve(fds: list[int]) -> None:
    import uvicorn

    from services.common.lifeline import watch_supervisor

    watch_supervisor(os.getppid())  # a benchmark killed outright leaves no stub behind
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a connection per simulated user
    # uvicorn's default keep-alive (5 s), as the real gateways: a generator whose users' cycles stretch past it
    # races the stub's close, and its failures show, as they would against the stack.
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", backlog=BACKLOG)
    uvicorn.Server(config).run(sockets=[socket.socket(fileno=fd) for fd in fds])


if __name__ == "__main__":
    serve([int(arg) for arg in sys.argv[1:]])
