"""Handing a held listening socket to a service in a container, and a lifeline back (the Docker runtime).

The local runtime keeps a copy of every listening socket, so a powered-off port accepts connections that
never get an answer. A container cannot inherit a file descriptor from us (dockerd starts it, not we), but it
can receive one: the runtime serves an abstract Unix socket, the container's entrypoint connects, names its
instance, proves it holds the run's admin secret, and gets the listening socket (SCM_RIGHTS). Host networking
shares the network namespace, so the socket works in the container, and abstract Unix names live in that same
namespace (no file to mount). The runtime never lets go of its copy: when the container is SIGKILLed the port
keeps accepting into its backlog, exactly like a local process; there is no moment when the port is unbound.

The connection stays open as a lifeline: the entrypoint exits when it closes, so containers die with the
runtime even when it is SIGKILLed (the local runtime's children do the same with PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import hmac
import socket
import threading

ACCEPT_TIMEOUT_S = 0.5  # how often the serving thread looks whether it should stop
HELLO_TIMEOUT_S = 5.0
MAX_HELLO = 4096


def abstract_address(name: str) -> str:
    return "\0" + name


class SocketHandoff:
    """Serves ``sockets`` (instance -> listening socket) at the abstract Unix name ``name``."""

    def __init__(self, name: str, secret: str, sockets: dict[str, socket.socket]) -> None:
        self.name = name
        self._secret = secret.encode()
        self._sockets = sockets
        self._lifelines: dict[str, socket.socket] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(abstract_address(name))
        self._server.listen(64)
        self._server.settimeout(ACCEPT_TIMEOUT_S)
        self._thread = threading.Thread(target=self._serve, name="socket-handoff", daemon=True)
        self._thread.start()

    def handed(self, name: str) -> bool:
        """Has the instance's current container taken its socket?"""
        with self._lock:
            return name in self._lifelines

    def cut(self, names: list[str]) -> None:
        """Forget the lifelines of instances that were killed (their next container connects again)."""
        with self._lock:
            for name in names:
                conn = self._lifelines.pop(name, None)
                if conn is not None:
                    conn.close()

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._server.close()
        self.cut(list(self._lifelines))

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                self._hand_over(conn)
            except OSError:
                conn.close()

    def _hand_over(self, conn: socket.socket) -> None:
        conn.settimeout(HELLO_TIMEOUT_S)
        hello = b""
        while not hello.endswith(b"\n") and len(hello) < MAX_HELLO:
            chunk = conn.recv(MAX_HELLO)
            if not chunk:
                break
            hello += chunk
        name, _, secret = hello.strip().decode(errors="replace").partition(" ")
        if not hmac.compare_digest(secret.encode(), self._secret):
            conn.sendall(b"refused: wrong secret\n")
            conn.close()
            return
        listener = self._sockets.get(name)
        if listener is None:
            conn.sendall(f"refused: no instance '{name}' in this run\n".encode())
            conn.close()
            return
        conn.settimeout(None)
        # Registered before the socket is sent: once the instance has it, a power cut (``cut``) must find it.
        with self._lock:
            old = self._lifelines.pop(name, None)
            self._lifelines[name] = conn
        if old is not None:
            old.close()
        try:
            socket.send_fds(conn, [b"ok\n"], [listener.fileno()])
        except OSError:
            with self._lock:
                if self._lifelines.get(name) is conn:
                    del self._lifelines[name]
            raise
