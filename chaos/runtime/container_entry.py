"""The entrypoint of a service container: `python -m chaos.runtime.container_entry` (BLACKOUT_* env).

It runs the service like a local process does (services.common.runner). Under the Docker runtime
(BLACKOUT_HANDOFF set) the listening socket is the one the runtime holds, fetched once the app is built, and
the connection stays open as a lifeline (see chaos/runtime/handoff.py); under plain `docker-compose up` the
service binds BLACKOUT_PORT itself.
"""

from __future__ import annotations

import os
import socket
import sys
import threading

from chaos.runtime.handoff import abstract_address

CONNECT_TIMEOUT_S = 10.0


def fetch_listener(handoff: str, instance: str, secret: str) -> tuple[int, socket.socket]:
    """The inherited socket's descriptor and the lifeline connection; exits with a reason when refused."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(CONNECT_TIMEOUT_S)
    try:
        conn.connect(abstract_address(handoff))
        conn.sendall(f"{instance} {secret}\n".encode())
        message, fds, _, _ = socket.recv_fds(conn, 1024, 1)
    except OSError as exc:
        sys.exit(f"{instance}: no listening socket from the runtime at @{handoff}: {exc}")
    if message.strip() != b"ok" or len(fds) != 1:
        sys.exit(f"{instance}: the runtime refused its socket: {message.decode(errors='replace').strip()}")
    conn.settimeout(None)
    return fds[0], conn


def die_with(lifeline: socket.socket) -> None:
    """Exit as soon as the runtime's end closes: the runtime is gone, or it let this instance go."""

    def watch() -> None:
        try:
            while lifeline.recv(64):
                pass
        except OSError:
            pass
        os._exit(1)

    threading.Thread(target=watch, name="runtime-lifeline", daemon=True).start()


def main() -> int:
    from services.common import runner

    handoff = os.environ.get("BLACKOUT_HANDOFF")
    if not handoff:
        return runner.main()  # plain Compose: bind BLACKOUT_PORT

    def from_runtime(settings: object) -> socket.socket:
        # Asked for only once the app is built: until then the runtime resets connections to the port, as a
        # host that is up but not yet listening would, instead of queueing work for a process still importing.
        fd, lifeline = fetch_listener(
            handoff, os.environ.get("BLACKOUT_INSTANCE", "?"), os.environ.get("BLACKOUT_ADMIN_SECRET", "")
        )
        die_with(lifeline)
        return socket.socket(fileno=fd)

    return runner.main(listener=from_runtime)


if __name__ == "__main__":
    sys.exit(main())
