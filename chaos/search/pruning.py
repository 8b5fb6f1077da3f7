"""Lineage-driven pruning (Alvaro et al., SIGMOD 2015): propose only the fault sets that cut every known support.

A *support* is the set of edges a request that was not broken actually used (the calls that answered: its
lineage). As long as one support stays whole the request is taken to succeed again, so a fault set worth
trying must hit every support found so far; each experiment that still is not broken adds its own support
(the way round the faults it took), and the candidates shrink. LDFI hands this to a SAT solver; with at most
K <= 3 faults out of a hundred-odd atoms, an exact branching enumeration (pick a support no chosen atom hits,
branch on the atoms hitting it) lists every hitting set of size <= K in milliseconds, so no solver is needed.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping

from chaos.search.atoms import Atom, Edge

Support = frozenset[Edge]
FaultSet = frozenset[Atom]


def hitting_sets(
    supports: Collection[Support], cuts: Mapping[Atom, frozenset[Edge]], max_faults: int
) -> Iterator[FaultSet]:
    """Every set of at most ``max_faults`` atoms hitting each support (each set once; the minimal ones among
    them). A support no atom can hit (empty, or made of calls no atom cuts) admits no hitting set at all."""
    seen: set[FaultSet] = set()
    hitters = {support: [a for a, cut in cuts.items() if cut & support] for support in supports}

    def grow(chosen: FaultSet, cut: frozenset[Edge]) -> Iterator[FaultSet]:
        open_support = next((s for s in supports if not (s & cut)), None)
        if open_support is None:
            if chosen not in seen:
                seen.add(chosen)
                yield chosen
            return
        if len(chosen) == max_faults:
            return
        for atom in hitters[open_support]:
            if atom not in chosen:
                yield from grow(chosen | {atom}, cut | cuts[atom])

    if supports:
        yield from grow(frozenset(), frozenset())


def candidates(
    supports: Collection[Support],
    cuts: Mapping[Atom, frozenset[Edge]],
    max_faults: int,
    tried: Collection[FaultSet],
    failing: Collection[FaultSet],
    rank: Mapping[Atom, int],
) -> list[FaultSet]:
    """The fault sets still worth an experiment, smallest first (ties in the seed's ``rank`` order): hitting every
    support, not tried yet, and not containing a set already known to break the request (it would not be minimal)."""
    found = [
        chosen
        for chosen in hitting_sets(supports, cuts, max_faults)
        if chosen and chosen not in tried and not any(bad <= chosen for bad in failing)
    ]
    return sorted(found, key=lambda chosen: (len(chosen), sorted(rank[a] for a in chosen)))
