"""The runtime's side of the zygote (chaos/runtime/zygote.py): start it, ask it for instances, watch them.

The instances are the zygote's children, not ours: a pidfd tells when one is gone (no waitpid needed,
and no zombie looks alive), the zygote tells its exit code.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from chaos.runtime.base import RuntimeError_

PROJECT_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 60.0


class ForkedProcess:
    """The parts of subprocess.Popen the runtime uses, for an instance the zygote forked."""

    def __init__(self, pid: int, server: ForkServer) -> None:
        self.pid = pid
        self._server = server
        self._returncode: int | None = None
        self._gone = False
        try:
            self._pidfd = os.pidfd_open(pid)
        except ProcessLookupError:  # it exited at once and the zygote reaped it already: it says the code
            self._pidfd, self._gone = -1, True
        self._closing = threading.Lock()  # kill() never signals a pidfd number closed (and reused) meanwhile

    def poll(self) -> int | None:
        if not self._gone and select.select([self._pidfd], [], [], 0)[0]:
            self._mark_gone()
        if self._gone and self._returncode is None:
            self._returncode = self._server.exit_code(self.pid)
        return self._returncode if self._gone else None

    @property
    def returncode(self) -> int | None:
        return self.poll()

    def wait(self, timeout: float | None = None) -> int | None:
        if not self._gone:
            if not select.select([self._pidfd], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired(f"instance {self.pid}", timeout or 0.0)
            self._mark_gone()
        return self.poll()

    def _mark_gone(self) -> None:
        with self._closing:
            if not self._gone:
                self._gone = True
                os.close(self._pidfd)  # its one use is over

    def kill(self) -> None:
        """SIGKILL through the pidfd: by pid, a process that already died (and was reaped by the zygote) could
        have handed its number to a stranger."""
        with self._closing:
            if self._gone:
                return
            try:
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass  # it died just now


class ForkServer:
    def __init__(self, log_path: Path) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        os.set_inheritable(theirs.fileno(), True)
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    f"import os, sys; os.dup2({theirs.fileno()}, 3); "
                    "from chaos.runtime.zygote import main; sys.exit(main())",
                ],
                cwd=PROJECT_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(theirs.fileno(),),
                process_group=0,
            )
        theirs.close()
        self._sock = ours
        self._lock = threading.Lock()  # one request and its answer at a time
        self._sock.settimeout(READY_TIMEOUT_S)
        try:
            ready = self._receive()
        except (TimeoutError, OSError, ValueError):
            self.close()
            raise RuntimeError_(f"the zygote did not start; see {log_path}") from None
        self.pid = ready["ready"]

    def spawn(
        self, env: dict[str, str], listen_fd: int, log_path: Path, pgid: int, netns: Path | None = None
    ) -> ForkedProcess:
        """``netns``: the network namespace (a pinned /run/netns file) the instance joins before it starts."""
        request = {"op": "spawn", "env": env, "pgid": pgid, "netns": str(netns) if netns else None}
        with log_path.open("ab") as log, self._lock:
            socket.send_fds(self._sock, [json.dumps(request).encode()], [listen_fd, log.fileno()])
            pid = self._receive()["pid"]
        return ForkedProcess(pid, self)

    def exit_code(self, pid: int) -> int | None:
        deadline = time.monotonic() + 1.0
        while True:  # the zygote reaps on SIGCHLD: a moment after the pidfd said "gone"
            with self._lock:
                self._sock.sendall(json.dumps({"op": "status", "pid": pid}).encode())
                code: int | None = self._receive()["code"]
            if code is not None or time.monotonic() > deadline:
                return code
            time.sleep(0.01)

    def close(self) -> None:
        self._sock.close()  # EOF: the zygote exits
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def _receive(self) -> dict[str, Any]:
        message = self._sock.recv(1 << 20)
        if not message:
            raise RuntimeError_("the zygote is gone")
        answer: dict[str, Any] = json.loads(message)
        return answer
