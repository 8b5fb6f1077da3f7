"""Each team's stack on its own CPUs, so one team's retry storm does not slow the next team's stack (and score).

The set is given to the `blackout up` that starts a team's supervisor: every process of the stack (services,
the zygote, the users' load generator, an instance restarted by a power-on) is forked from it and inherits it,
which pinning running processes afterwards would miss."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import psutil

from services.common.errors import UsageError

CORES_PER_TEAM = 2  # a stack (8 services + users) keeps about this many busy; fewer and teams share cores


def available() -> list[int]:
    """The CPUs this process may use (a container or taskset may give fewer than the machine has)."""
    return sorted(os.sched_getaffinity(0))


def plan(teams: list[str], per_team: int | None, cpus: list[int] | None = None) -> dict[str, list[int]] | None:
    """A disjoint CPU set per team: ``per_team`` each when asked, else CORES_PER_TEAM each when the machine has
    enough; None when it has not (the teams share every core)."""
    cpus = available() if cpus is None else cpus
    wanted = per_team if per_team is not None else CORES_PER_TEAM
    if wanted * len(teams) > len(cpus):
        if per_team is not None:
            raise UsageError(
                f"--cpus-per-team {per_team}: {len(teams)} teams need {per_team * len(teams)} CPUs, "
                f"this machine gives {len(cpus)}"
            )
        return None
    return {team: cpus[i * wanted : (i + 1) * wanted] for i, team in enumerate(teams)}


def pinned(cpus: list[int] | None) -> Callable[[], None] | None:
    """A preexec_fn for the child that starts a team's stack: it and every process it forks run on ``cpus``."""
    if cpus is None:
        return None
    chosen = set(cpus)

    def pin() -> None:
        os.sched_setaffinity(0, chosen)

    return pin


def allowed(pid: int) -> list[int] | None:
    """The CPUs ``pid`` may run on, as the kernel says in /proc/<pid>/status (None: the process is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    text = next(line.split(":", 1)[1].strip() for line in status.splitlines() if line.startswith("Cpus_allowed_list"))
    return expand(text)


def expand(text: str) -> list[int]:
    """'0-2,5' -> [0, 1, 2, 5]: the kernel's list format."""
    cpus: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cpus += range(int(lo), int(hi or lo) + 1)
    return cpus


def stack_pids(supervisor: int) -> list[int]:
    """The supervisor and every process under it (the services, the zygote, the load generator)."""
    try:
        root = psutil.Process(supervisor)
        return [supervisor, *(p.pid for p in root.children(recursive=True))]
    except psutil.Error:
        return []
