"""The smallest HTTP server worth calling: a raw ASGI app answering `{"ok":true}` to everything, under
uvicorn, in its own process on a socket the caller bound (port 0) and passed down. Loopback only."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from starlette.types import Receive, Scope, Send

from support.child_server import child_server, listening_socket, url_of

BODY = b'{"ok":true}'


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


@contextmanager
def tiny_server(start_timeout_s: float = 20.0) -> Iterator[str]:
    """Start the server; yield its base URL; stop it (by its pid) on the way out."""
    sock = listening_socket(128)
    url = url_of(sock)

    def ready() -> bool:
        try:
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    with child_server(__file__, [sock], ready, "the tiny server", start_timeout_s):
        yield url


if __name__ == "__main__":
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[socket.socket(fileno=int(sys.argv[1]))])
