"""Telling a process from a later one that got its pid: a pid is only an identity together with a start time.

A pid written to a file (the control file, state.json, a container's owner label) outlives its process; the
kernel hands the number to the next process that needs one. So wherever a pid is kept, its start time is kept
(or known) too, and a process counts only if its start time fits.
"""

from __future__ import annotations

import psutil

# psutil's start times rest on the boot time, which Linux reports in whole seconds (and a clock step can move
# by one): readings of one process may differ by a second, a start time and a file's mtime as much. A later
# process with the same pid started within this of the first would need the pid space to wrap that fast.
CLOCK_SLACK_S = 1.5


def start_time(pid: int) -> float | None:
    """When the live process ``pid`` started (epoch seconds), or None when there is none (or only a zombie)."""
    try:
        process = psutil.Process(pid)
        return None if process.status() == psutil.STATUS_ZOMBIE else process.create_time()
    except psutil.Error:
        return None


def is_process(pid: int, started: float) -> bool:
    """Whether ``pid`` is still the process that started at ``started`` (as ``start_time`` gave it)."""
    now = start_time(pid)
    return now is not None and abs(now - started) <= CLOCK_SLACK_S


def existed_at(pid: int, moment: float) -> bool:
    """Whether ``pid`` is a live process that already ran at ``moment`` (e.g. when it wrote a file): one that
    started later only reuses the number of the one that wrote it, which is gone."""
    started = start_time(pid)
    return started is not None and started <= moment + CLOCK_SLACK_S
