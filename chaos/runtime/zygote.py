"""The zygote: a process that has imported every service once and forks a new instance on request.

Why: a cold Python start of one service imports FastAPI, pydantic, aiohttp and the rest, ~1 s of CPU;
a data center of five coming back under full load on two cores took 5-19 s. A fork of this warmed
process is up in well under a second: a powered-on host booting from a warm image. The child opens its
own database and event loop after the fork, so it shares nothing live with its siblings.

Protocol (``chaos/runtime/forkserver.py`` is the client), over a SOCK_SEQPACKET socket on fd 3:
``{"op": "spawn", "env": {...}, "pgid": 0|N, "netns": null|path}`` with two fds (the listening socket, the log file) ->
``{"pid": N}``; ``{"op": "status", "pid": N}`` -> ``{"code": int|None}``. EOF: exit (children follow,
by their parent-death signal).
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import signal
import socket
import sys
import traceback
from pathlib import Path
from typing import Any

from chaos.runtime.netlink import enter

COMMAND_FD = 3
MAX_MESSAGE = 1 << 20


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def main() -> int:
    parent = os.getppid()
    _die_with_parent()
    if os.getppid() != parent:
        return 1
    from services.common import runner  # noqa: F401  the point: import everything once, before any fork
    from services.common.names import SERVICES

    for service in SERVICES:
        importlib.import_module(f"services.{service}.app")
    exits: dict[int, int] = {}

    def reap(signum: int, frame: object) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            exits[pid] = os.waitstatus_to_exitcode(status)

    signal.signal(signal.SIGCHLD, reap)
    commands = socket.socket(fileno=COMMAND_FD)
    commands.send(json.dumps({"ready": os.getpid()}).encode())
    while True:
        message, fds, _, _ = socket.recv_fds(commands, MAX_MESSAGE, 2)
        if not message:
            return 0  # the runtime closed its end
        request = json.loads(message)
        if request["op"] == "status":
            commands.send(json.dumps({"code": exits.get(request["pid"])}).encode())
            continue
        pid = _spawn(request, fds, commands)
        for fd in fds:
            os.close(fd)
        commands.send(json.dumps({"pid": pid}).encode())


def _spawn(request: dict[str, Any], fds: list[int], commands: socket.socket) -> int:
    listen_fd, log_fd = fds
    pgid = int(request["pgid"])
    pid = os.fork()
    if pid:
        try:
            os.setpgid(pid, pgid or pid)  # also here: the group is right before the runtime can signal it
        except (PermissionError, ProcessLookupError):
            pass  # the child already did it (or already exec'd into its own life)
        return pid
    code = 1
    try:
        # the instance's own log first: whatever fails from here on is told there, not in the zygote's
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        sys.stdout = os.fdopen(1, "w", buffering=1)
        sys.stderr = os.fdopen(2, "w", buffering=1)
        try:
            os.setpgid(0, pgid)
        except PermissionError:
            print(f"cannot join process group {pgid}: every process of this data center had exited", file=sys.stderr)
            raise
        if request.get("netns"):
            enter(Path(request["netns"]))  # before the instance makes any socket: its calls leave from there
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        commands.close()
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ["BLACKOUT_LISTEN_FD"] = str(listen_fd)
        os.environ["BLACKOUT_SUPERVISOR_PID"] = str(os.getppid())  # the zygote: its death is ours
        from services.common import runner

        code = runner.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
