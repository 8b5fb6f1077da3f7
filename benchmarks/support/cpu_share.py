"""A slower machine on demand: a CPU cgroup capping a local stack at a share of one core (CFS bandwidth).

cgroup v2 (``cpu.max``) when the cpu controller is enabled there, else cgroup v1's cpu controller
(``cpu.cfs_quota_us``/``cpu.cfs_period_us``): the same kernel mechanism, a quota of CPU time per period for
every thread of the processes inside. Needs root. The group is created here and removed on the way out
(its processes moved back to where this process is first): nothing is left behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chaos.runtime.local import LocalRuntime

PERIOD_US = 100_000
V2 = Path("/sys/fs/cgroup")
V1 = Path("/sys/fs/cgroup/cpu")


class CpuShare:
    def __init__(self, group: Path, home: Path) -> None:
        self.group, self.home = group, home

    def add(self, pid: int) -> None:
        try:
            (self.group / "cgroup.procs").write_text(str(pid))
        except ProcessLookupError:
            pass  # gone already

    def add_stack(self, runtime: LocalRuntime) -> None:
        """Every instance, and the zygote later instances are forked from (they inherit its group)."""
        zygote = getattr(runtime, "_zygote", None)
        pids = [info["pid"] for info in runtime.status().values() if info.get("pid")]
        for pid in pids + ([zygote.pid] if zygote is not None else []):
            self.add(pid)

    def stat(self) -> dict[str, int]:
        """The cap at work: periods, and how many of them throttled the group (cpu.stat, v1 and v2)."""
        pairs = (line.split() for line in (self.group / "cpu.stat").read_text().splitlines())
        return {key: int(value) for key, value in pairs}


def _own_group(hierarchy: Path, v2: bool) -> Path:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        number, controllers, where = line.split(":", 2)
        if (v2 and number == "0") or (not v2 and "cpu" in controllers.split(",")):
            return hierarchy / where.lstrip("/")
    raise OSError("this process's cgroup is unknown")


def _where() -> tuple[Path, bool]:
    controllers = V2 / "cgroup.controllers"
    if controllers.exists() and "cpu" in controllers.read_text().split():
        return V2, True
    if (V1 / "cpu.cfs_quota_us").exists():
        return V1, False
    raise OSError("no cgroup cpu controller (v2 cpu.max or v1 cpu.cfs_quota_us) to cap CPU with")


def available() -> bool:
    """Whether this process may make a capped group here: root, and a cgroup CPU controller."""
    try:
        _where()
    except OSError:
        return False
    return os.geteuid() == 0


@contextmanager
def cpu_share(share: float) -> Iterator[CpuShare]:
    """A cgroup allowing ``share`` of one core (0.5: half a core) to what is added to it."""
    if not 0.01 <= share <= 64:
        raise ValueError("share must be 0.01..64 cores")
    hierarchy, v2 = _where()
    home = _own_group(hierarchy, v2)
    group = hierarchy / f"blackout-share-{os.getpid()}"
    group.mkdir()
    try:
        quota = int(share * PERIOD_US)
        if v2:
            (group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        else:
            (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (group / "cpu.cfs_quota_us").write_text(str(quota))
        yield CpuShare(group, home)
    finally:
        for pid in (group / "cgroup.procs").read_text().split():
            try:
                (home / "cgroup.procs").write_text(pid)
            except (ProcessLookupError, OSError):
                pass
        group.rmdir()
