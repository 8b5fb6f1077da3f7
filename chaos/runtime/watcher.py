"""A watcher: a process that outlives the controller that started it, to clean up after it if it dies untidy.

What a runtime builds outside its own processes (namespaces pinned to files, a Swarm stack on other engines)
outlives a controller killed with SIGKILL, which runs no ``finally``. So before it builds anything the runtime
starts a watcher (``python -m <module> ARGS``, in a session of its own so a Ctrl-C meant for the controller does
not reach it) that waits on the controller's pidfd: when the controller dies, the watcher's module removes what
it left. A controller that tears down itself stops its watcher first (``stop``). The netns runtime
(chaos.runtime.netns_owner) and the swarm runtime (chaos.runtime.swarm_owner) each say what to remove.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from chaos.runtime.pids import is_process

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def start(module: str, args: Sequence[str], log_path: Path) -> subprocess.Popen[bytes]:
    """``python -m module args`` in a session of its own, its output appended to ``log_path``."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(watcher: subprocess.Popen[bytes]) -> None:
    """The controller tore down itself: its watcher has nothing left to do."""
    watcher.terminate()
    watcher.wait()


def wait_for_death(pid: int, started: float) -> None:
    """In the watcher: return once the process ``pid`` that started at ``started`` is gone. A SIGTERM (``stop``)
    ends the watcher instead."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return  # died before we looked
    try:
        if is_process(pid, started):  # not a later process that got its pid
            select.select([pidfd], [], [])
    finally:
        os.close(pidfd)
