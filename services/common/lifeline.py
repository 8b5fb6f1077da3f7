"""Die with the supervisor that started us, so a crashed `blackout` leaves no process behind."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

SUPERVISOR_ENV = "BLACKOUT_SUPERVISOR_PID"


def watch_supervisor(pid: int) -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: the kernel kills us when our parent dies
    if os.getppid() != pid:  # the parent died before we could ask
        os._exit(1)

    def poll() -> None:  # portable fallback (macOS has no PDEATHSIG)
        while os.getppid() == pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=poll, name="supervisor-watch", daemon=True).start()


def watch_supervisor_from_env() -> None:
    pid = os.environ.get(SUPERVISOR_ENV)
    if pid:
        watch_supervisor(int(pid))
