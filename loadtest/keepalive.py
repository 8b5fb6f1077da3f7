"""Keep-alive that holds past 1,023 open files, for locust's FastHttpUser (geventhttpclient).

Before reusing a kept-alive connection, geventhttpclient checks it is still open with ``select.select()``.
Under gevent that first calls the real select(2), which takes no descriptor above 1023 (FD_SETSIZE): it
raises ValueError, which geventhttpclient reads as "dead", so it closes the connection and opens a new one.
A locust worker driving thousands of users holds thousands of connections, so most users lost keep-alive:
one new TCP connection per request, more CPU on both ends, and connects stuck in SYN retries (seconds).
``install()`` replaces that check with poll(2), which has no such limit (as urllib3 did for the same bug).
"""

from __future__ import annotations

import select
from typing import Any

from gevent.monkey import get_original
from geventhttpclient.connectionpool import ConnectionPool

_poll = get_original("select", "poll")  # the real poll: with a zero timeout it never blocks the loop


def socket_alive(sock: Any) -> bool:
    """An idle kept-alive connection is usable when nothing is readable on it: no FIN, no error, no stray bytes."""
    if sock is None:
        return False
    try:
        fd = sock.fileno()
        if fd < 0:
            return False
        poller = _poll()
        poller.register(fd, select.POLLIN | select.POLLPRI)  # POLLHUP, POLLERR and POLLNVAL always count
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


def _is_socket_alive(self: ConnectionPool, sock: Any) -> bool:
    return socket_alive(sock)


def install() -> bool:
    """Every geventhttpclient connection pool of this process checks its idle connections with poll(2).

    False when this geventhttpclient has no such check to replace (older ones reuse idle connections unchecked).
    """
    if not callable(getattr(ConnectionPool, "_is_socket_alive", None)):
        return False
    # replacing the library's own check is the point (this module's doc); mypy flags any method assignment
    ConnectionPool._is_socket_alive = _is_socket_alive  # type: ignore[method-assign]
    return True
