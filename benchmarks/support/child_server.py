"""A benchmark's server in a child process, on sockets bound here (port 0) and handed down, stopped by its pid."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent


def listening_socket(backlog: int) -> socket.socket:
    """A loopback socket on a port the kernel picked, already listening: nothing can take it in between."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextmanager
def child_server(
    script: str, socks: list[socket.socket], ready: Callable[[], bool], what: str, start_timeout_s: float = 20.0
) -> Iterator[int]:
    """Run ``python script FD...`` serving ``socks``; poll ``ready()`` until it holds (the sockets already
    accept, so a request waits rather than fails); yield the child's pid; stop it and close the sockets
    on the way out, whatever happens."""
    fds = [sock.fileno() for sock in socks]
    # the script runs with its own folder first on sys.path: it imports support.* as its parent did
    path = os.pathsep.join(filter(None, [str(BENCHMARKS), os.environ.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        [sys.executable, script, *map(str, fds)], pass_fds=fds, env={**os.environ, "PYTHONPATH": path}
    )
    try:
        deadline = time.monotonic() + start_timeout_s
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start (exit code {proc.poll()})")
            time.sleep(0.05)  # poll interval
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for sock in socks:
            sock.close()
