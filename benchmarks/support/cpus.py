"""Give a local stack and the load generator separate CPUs, so a benchmark measures the stack, not the fight.

On a small machine the load generator competes with the services for the same cores: at 5x the load it
would steal CPU from the stack and make any stack look like it collapses. Pinning the stack's processes
(every thread) to all cores but the last and the generator to the last keeps the stack's budget fixed
across offered loads. Linux only; elsewhere (or on one core) nothing is pinned and the output says so.
"""

from __future__ import annotations

import os

import psutil

from chaos.runtime.local import LocalRuntime


def split() -> tuple[set[int], set[int]] | None:
    """(stack cores, generator cores), or None when there is nothing to split."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None
    return set(cores[:-1]), {cores[-1]}


def pin(runtime: LocalRuntime) -> str:
    """Pin the stack and this process; a line saying what was done."""
    cores = split()
    if cores is None:
        return "CPU pinning unavailable: the load generator shares the stack's cores"
    stack_cores, generator_cores = cores
    for info in runtime.status().values():
        if info.get("pid") is None:
            continue
        try:
            for thread in psutil.Process(info["pid"]).threads():
                os.sched_setaffinity(thread.id, stack_cores)
        except (psutil.NoSuchProcess, ProcessLookupError):
            continue
    os.sched_setaffinity(0, generator_cores)
    return f"stack pinned to cores {sorted(stack_cores)}, load generator to {sorted(generator_cores)}"


def unpin() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(range(psutil.cpu_count() or 1)))


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """User + system CPU seconds of each named process so far (0 for one already gone)."""
    out = {}
    for name, pid in pids.items():
        try:
            out[name] = sum(psutil.Process(pid).cpu_times()[:2])
        except psutil.NoSuchProcess:
            out[name] = 0.0
    return out
