"""The search loop on a synthetic system: it finds exactly the minimal cut sets brute force finds, in fewer
experiments, the same way for the same seed."""

from __future__ import annotations

import asyncio
import itertools

from chaos.search.atoms import Atom
from chaos.search.engine import Search
from chaos.search.oracle import BROKEN, OK, Outcome

# A request served through a front (f1, or f2 when f1 is down) reading a store (s1, else s2): four ways through.
PATHS = [
    frozenset({("user", "f1"), ("f1", "s1")}),
    frozenset({("user", "f1"), ("f1", "s2")}),
    frozenset({("user", "f2"), ("f2", "s1")}),
    frozenset({("user", "f2"), ("f2", "s2")}),
]
EDGES = frozenset().union(*PATHS)
INSTANCES = ("f1", "f2", "s1", "s2", "unused")
ATOMS = {Atom("crash", name): frozenset(e for e in EDGES if e[1] == name) for name in INSTANCES}
ATOMS |= {Atom("error", b, a): frozenset({(a, b)}) for a, b in EDGES if a != "user"}


def system(chosen: frozenset[Atom]) -> Outcome:
    cut = frozenset().union(*(ATOMS[a] for a in chosen)) if chosen else frozenset()
    for path in PATHS:  # the first way still whole is the one taken (failover order)
        if not path & cut:
            return Outcome(OK, 200, 1.0, path)
    return Outcome(BROKEN, 0, 1.0, frozenset())


def brute_force_cuts(max_faults: int) -> set[frozenset[Atom]]:
    broken = [
        frozenset(c)
        for k in range(1, max_faults + 1)
        for c in itertools.combinations(sorted(ATOMS), k)
        if system(frozenset(c)).verdict == BROKEN
    ]
    return {c for c in broken if not any(other < c for other in broken)}


def search(max_faults: int, seed: int) -> tuple[set[frozenset[Atom]], int, int]:
    async def experiment(chosen: frozenset[Atom]) -> Outcome:
        return system(chosen)

    result = asyncio.run(Search("synthetic", experiment, ATOMS, max_faults, 60.0, seed, parallel=2).run())
    assert result.complete
    return set(result.minimal_broken), result.experiments, result.brute_force


def test_the_search_finds_every_minimal_cut_set_brute_force_finds_and_no_other():
    for k in (1, 2, 3):
        found, experiments, brute = search(k, seed=1)
        assert found == brute_force_cuts(k)
        assert experiments < brute
    assert search(1, 1)[0] == set()  # no single fault breaks a request with two ways round every part
    assert {Atom("crash", "f1"), Atom("crash", "f2")} in [set(c) for c in search(2, 1)[0]]


def test_the_same_seed_makes_the_same_search():
    assert search(2, seed=7)[1:] == search(2, seed=7)[1:]
