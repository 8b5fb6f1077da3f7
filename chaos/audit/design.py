"""The replication design a run is held to: from the topology (one views instance is a single copy) and the
profiles the run actually ran under, never a default. Those are its starting profile (the engine's copy,
profile.yaml) and each profile switched to while it ran: a "profile" event in the stack's journal, the
profile's copy beside it (profile-<name>.yaml, written by the runtime as it switches).

Across switches the weakest design holds: views acknowledged under async may be rolled back later."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chaos.journal import Event
from chaos.rundir import PROFILE_FILE, profile_copy
from chaos.topology import Topology
from services.common.errors import ConfigError
from services.common.policy import load_profile

SINGLE = "single copy"
WEAKEST_FIRST = ("async", "converge")


@dataclass(frozen=True)
class Design:
    name: str  # "single copy", "async" or "converge"
    profiles: tuple[str, ...]  # the profiles in force, in order
    problems: tuple[str, ...]  # profiles that could not be read, each file named

    @property
    def promises_no_loss(self) -> bool:
        """converge merges the logs; a single copy acknowledges only what its one log committed. Only async
        may lose acknowledged views: the in-flight ones a rejoining data center rolls back."""
        return self.name in (SINGLE, "converge")


def design_of(topology: Topology, run_dir: Path, stack_dir: Path, switches: list[Event]) -> Design:
    """``switches``: the stack journal's "profile" events while the run lasted."""
    paths = [run_dir / PROFILE_FILE] + [profile_copy(stack_dir, str(e.get("profile"))) for e in switches]
    names: list[str] = []
    replications: set[str] = set()
    problems: list[str] = []
    for path in paths:
        try:
            profile = load_profile(path)
        except ConfigError as exc:
            problems.append(f"{exc}: a profile this run ran under, so its replication design is unknown")
            continue
        names.append(profile.name)
        replications.add(profile.replication)
    views = [n for n, (_, inst) in topology.instances().items() if inst.service == "views"]
    if len(views) < 2:
        name = SINGLE
    else:
        name = next((r for r in WEAKEST_FIRST if r in replications), "unknown")
    return Design(name, tuple(names), tuple(problems))
