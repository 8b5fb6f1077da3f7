"""The listening sockets a runtime holds for its instances: bound once, handed to each incarnation.

Holding them is what makes a dead port hang (the kernel still accepts into the backlog) instead of
refusing, and binding port 0 here is what lets tests run beside anything without a port race.
"""

from __future__ import annotations

import socket
import struct

from chaos.runtime.base import RuntimeError_


def bind(name: str, port: int, host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise RuntimeError_(
            f"port {port} for {name} is taken ({exc.strerror}): is another Blackout running? try `blackout down`"
        ) from None
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def drop_queued_connections(sock: socket.socket) -> None:
    """Reset every connection that queued on the port while it was dark.

    A rebooted host has no memory of connections made to it before it came back: their packets get a
    RST. Without this the new process would accept and serve requests whose callers gave up long ago
    (a burst of stale work exactly when the data center is weakest)."""
    sock.setblocking(False)
    try:
        while True:
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
            conn.close()
    finally:
        sock.setblocking(True)
