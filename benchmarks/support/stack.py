"""Start a real local stack for a benchmark on ports no other running stack holds, and always tear it down."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chaos.interrupts import terminate_as_interrupt
from chaos.runtime.local import LocalRuntime
from chaos.topology import Topology, load_topology

PROJECT = Path(__file__).resolve().parents[2]
# A RAM-backed folder (Linux): the stack's SQLite files there commit without waiting for a disk (see running()).
MEMORY = Path("/dev/shm")


def topology(name: str) -> Topology:
    return load_topology(PROJECT / "topologies" / f"{name}.yaml")


def _runtime(topo: Topology, run_dir: Path, profile: Path | None) -> LocalRuntime:
    return LocalRuntime(topo.with_any_ports(), run_dir, profile=profile)  # port 0: no collision with anything


@contextmanager
def running(
    topo: Topology,
    profile: str | None,
    run_dir: Path | None = None,
    timings: dict[str, float] | None = None,
    in_memory: bool = False,
) -> Iterator[LocalRuntime]:
    """A started stack (``profiles/<profile>.yaml``); torn down on the way out, whatever happens.
    ``timings["up_s"]``: how long ``up()`` took, from the first bind to every instance healthy.
    ``in_memory``: its files (databases, logs) in RAM, where an fsync returns at once. For a benchmark of CPU
    overload only: on a machine whose data centers share one disk, a stall of that disk (a second or more,
    now and then) holds every data center's writes at once, which no policy under test can route around."""
    profile_path = PROJECT / "profiles" / f"{profile}.yaml" if profile else None
    base = MEMORY if in_memory and MEMORY.is_dir() else None
    with terminate_as_interrupt(), tempfile.TemporaryDirectory(prefix="blackout-bench-", dir=base) as scratch:
        where = run_dir or Path(scratch)
        runtime = _runtime(topo, where, profile_path)
        started = time.monotonic()
        try:
            runtime.up()
            if timings is not None:
                timings["up_s"] = time.monotonic() - started
            yield runtime
        finally:
            runtime.down()


def url(runtime: LocalRuntime, instance: str) -> str:
    """The instance's address as it runs (the runtime may have chosen the port)."""
    return f"http://127.0.0.1:{runtime.status()[instance]['port']}"


def cpu_seconds(runtime: LocalRuntime) -> dict[str, float]:
    """User + system CPU each running instance has used so far (diff two readings to cost a run)."""
    import psutil

    used = {}
    for name, info in runtime.status().items():
        if info["pid"] is not None:
            try:
                times = psutil.Process(info["pid"]).cpu_times()
            except psutil.NoSuchProcess:
                continue
            used[name] = times.user + times.system
    return used


def memory_bytes(runtime: LocalRuntime) -> dict[str, dict[str, int]]:
    """Per running instance: rss (what `ps` shows; counts shared library pages once per process) and
    pss (shared pages split between the processes sharing them: what the stack really costs)."""
    import psutil

    used = {}
    for name, info in runtime.status().items():
        if info["pid"] is not None:
            try:
                full = psutil.Process(info["pid"]).memory_full_info()
            except psutil.NoSuchProcess:
                continue
            used[name] = {"rss": full.rss, "pss": getattr(full, "pss", full.rss)}
    return used
