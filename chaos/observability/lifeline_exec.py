"""Run a program that dies with the process that started it: ``python -m chaos.observability.lifeline_exec
PARENT_PID PROGRAM ARGS...``.

Prometheus is a Go binary we cannot teach to watch its parent, so this sets Linux's parent-death
signal and then *becomes* the program (execv keeps the pid and the signal setting). A crashed
`blackout` then leaves no Prometheus behind. Elsewhere (macOS) it just runs the program.
Linux sends the signal when the *thread* that started it ends: start it from a thread that outlives it
(``observe_run`` starts and stops Prometheus on the same thread).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> None:
    if len(argv) < 2 or not argv[0].isdigit():
        sys.exit("usage: python -m chaos.observability.lifeline_exec PARENT_PID PROGRAM [ARGS...]")
    parent, program = int(argv[0]), argv[1:]
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the signal was armed
        sys.exit(1)
    os.execv(program[0], program)


if __name__ == "__main__":
    main(sys.argv[1:])
