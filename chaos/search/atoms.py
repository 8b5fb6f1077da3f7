"""Fault atoms: the single faults the search combines, read from the topology.

Each instance crashed (calls to it refused at once) or black-holed (calls to it never answered), each data
center's power (every instance in it black-holed, as the local runtime's power cut shows callers), and each
caller -> callee link of ``depends_on`` black-holed, erroring (5xx) or slow (answered after the caller's
timeout). An atom cuts *edges* of a request's lineage: (caller, callee) instance pairs, the user's hop to a
gateway being (``USER``, gateway).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

from chaos.topology import Topology
from services.common.faults.scoped import ANY_SOURCE, ScopedFault

USER = "user"  # the caller of a gateway: the app (the oracle plays it)
INSTANCE_KINDS = ("crash", "blackhole")
LINK_KINDS = ("blackhole", "error", "slow")
POWER = "power"

Edge = tuple[str, str]  # (caller instance or USER, callee instance)


@dataclass(frozen=True, order=True)
class Atom:
    kind: str  # crash | blackhole | error | slow | power
    target: str  # an instance, or a data center for power
    source: str = ""  # a link's caller; "" for an instance or a data center

    @property
    def name(self) -> str:
        if self.kind == POWER:
            return f"power {self.target}"
        if self.source:
            return f"{self.kind} {self.source}->{self.target}"
        return f"{self.kind} {self.target}"


def atoms(topology: Topology) -> list[Atom]:
    """Every atom of the topology, in a fixed order (data centers, instances, then links)."""
    found = [Atom(POWER, dc) for dc in topology.data_centers]
    instances = topology.instances()
    found += [Atom(kind, name) for name in instances for kind in INSTANCE_KINDS]
    found += [
        Atom(kind, callee, caller)
        for caller, (_, inst) in instances.items()
        for callees in inst.depends_on.values()
        for callee in callees
        for kind in LINK_KINDS
    ]
    return found


def edges(topology: Topology) -> set[Edge]:
    """Every call the topology allows: each depends_on pair, and the user's hop to each gateway."""
    instances = topology.instances()
    found = {(USER, name) for name, (_, inst) in instances.items() if inst.service == "gateway"}
    found |= {
        (caller, callee)
        for caller, (_, inst) in instances.items()
        for callees in inst.depends_on.values()
        for callee in callees
    }
    return found


def cuts(atom: Atom, topology: Topology) -> frozenset[Edge]:
    """The edges the atom stops: every call into an instance it downs, or its one link."""
    if atom.source:
        return frozenset({(atom.source, atom.target)})
    downed = set(topology.names(atom.target)) if atom.kind == POWER else {atom.target}
    return frozenset(edge for edge in edges(topology) if edge[1] in downed)


def scoped_faults(chosen: frozenset[Atom], topology: Topology) -> list[ScopedFault]:
    """The request-scoped faults the services apply for ``chosen`` (the user's hop is the oracle's own)."""
    faults = []
    for atom in sorted(chosen):
        if atom.kind == POWER:
            faults += [ScopedFault("blackhole", ANY_SOURCE, topology.url(name)) for name in topology.names(atom.target)]
        else:
            faults.append(ScopedFault(atom.kind, atom.source or ANY_SOURCE, topology.url(atom.target)))
    return faults


def gateway_fault(chosen: frozenset[Atom], gateway: str, topology: Topology) -> str | None:
    """How the user's hop to ``gateway`` fails under ``chosen``: crash, blackhole, or None (it answers)."""
    kinds = {a.kind for a in chosen if not a.source and a.target == gateway}
    if any(a.kind == POWER and a.target == topology.dc_of(gateway) for a in chosen):
        kinds.add("blackhole")
    return "blackhole" if "blackhole" in kinds else ("crash" if "crash" in kinds else None)


def brute_force(n_atoms: int, max_faults: int) -> int:
    """Experiments an exhaustive search of every set of 1..max_faults atoms makes (the fault-free run aside)."""
    return sum(comb(n_atoms, k) for k in range(1, max_faults + 1))
