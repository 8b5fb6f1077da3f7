"""The smallest HTTP server worth calling: a raw ASGI app answering `{"ok":true}` to everything, under
uvicorn, in its own process on a socket the caller bound (port 0) and passed down. Loopback only."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

BODY = b'{"ok":true}'


async def app(scope: dict, receive: object, send: object) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,  # type: ignore[operator]
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]})
    await send({"type": "http.response.body", "body": BODY})  # type: ignore[operator]


@contextmanager
def tiny_server(start_timeout_s: float = 20.0) -> Iterator[str]:
    """Start the server; yield its base URL; stop it (by its pid) on the way out."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.set_inheritable(True)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    proc = subprocess.Popen([sys.executable, __file__, str(sock.fileno())], pass_fds=(sock.fileno(),))
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:  # the socket already accepts; poll until the server answers
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the tiny server did not start (exit code {proc.poll()})")
            time.sleep(0.05)  # poll interval
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        sock.close()


if __name__ == "__main__":
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[socket.socket(fileno=int(sys.argv[1]))])
