"""Entry point of one service instance: `python -m services.common.runner` (configured by BLACKOUT_* env).

The listening socket may be inherited from the runtime (BLACKOUT_LISTEN_FD). The runtime keeps its copy
open, so when this process is killed the port does not refuse connections: they hang, like a powered-off
host behind a live switch, and callers see timeouts rather than instant errors.
"""

from __future__ import annotations

import importlib
import socket
import sys
from collections.abc import Callable

import uvicorn

from services.common.errors import ConfigError
from services.common.lifeline import watch_supervisor
from services.common.settings import ServiceSettings, load_settings


def listening_socket(settings: ServiceSettings) -> socket.socket:
    if settings.listen_fd is not None:
        return socket.socket(fileno=settings.listen_fd)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    sock.listen(128)
    return sock


def main(listener: Callable[[ServiceSettings], socket.socket] = listening_socket) -> int:
    """``listener``: where the listening socket comes from, asked once the app is built (the Docker runtime's
    entrypoint fetches it from the runtime then)."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"blackout service: {exc}", file=sys.stderr)
        return 2
    if settings.supervisor_pid is not None:
        watch_supervisor(settings.supervisor_pid)
    try:
        app = importlib.import_module(f"services.{settings.service}.app").create_app(settings)
    except ConfigError as exc:
        print(f"{settings.instance}: {exc}", file=sys.stderr)
        return 2
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=2)
    uvicorn.Server(config).run(sockets=[listener(settings)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
