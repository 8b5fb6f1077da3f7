"""The search loop for one user action: lineage-driven candidates, run in small parallel batches, each failing set
shrunk by delta debugging; bounded by the number of faults and a time budget, deterministic for a seed.

1. The fault-free run gives the first support (its lineage).
2. Candidates: the fault sets of at most K atoms hitting every support (chaos/search/pruning.py), smallest first.
3. Each candidate is one request-scoped experiment. Not broken: its lineage is a new support (the way round).
   Broken: ``ddmin`` shrinks it to a minimal failing set (its subsets were only *predicted* to pass), recorded.
4. Until no candidate is left (the search is complete up to K) or the budget runs out.

Every experiment is memoised by its fault set, so ddmin's tests and the loop's never run one set twice.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

from chaos.search.atoms import Atom, Edge, brute_force
from chaos.search.ddmin import ddmin
from chaos.search.oracle import BROKEN, DEGRADED, Outcome
from chaos.search.pruning import FaultSet, Support, candidates

Experiment = Callable[[FaultSet], Awaitable[Outcome]]


@dataclass
class SearchResult:
    label: str
    max_faults: int
    atoms: int
    brute_force: int  # fault sets of 1..K atoms, plus the fault-free run
    experiments: int = 0  # distinct fault sets run, the fault-free one included
    minimal_broken: list[FaultSet] = field(default_factory=list)
    minimal_degraded: list[FaultSet] = field(default_factory=list)  # among those tried
    supports: int = 0
    complete: bool = False  # every candidate up to K was tried (else the budget ran out)
    seconds: float = 0.0
    baseline: Outcome | None = None
    outcomes: dict[FaultSet, Outcome] = field(default_factory=dict)

    @property
    def depth(self) -> int | None:
        """The fault-tolerance depth: the fewest faults that break it (None: none up to K did)."""
        return min((len(s) for s in self.minimal_broken), default=None)


class Search:
    def __init__(
        self,
        label: str,
        experiment: Experiment,
        cuts: Mapping[Atom, frozenset[Edge]],
        max_faults: int,
        budget_s: float,
        seed: int,
        parallel: int = 8,
    ) -> None:
        self.experiment = experiment
        self.cuts = cuts
        self.max_faults = max_faults
        self.deadline = time.monotonic() + budget_s
        self.parallel = parallel
        order = sorted(cuts)
        random.Random(seed).shuffle(order)  # the seed orders ties: which equally small set is tried first
        self.rank = {atom: n for n, atom in enumerate(order)}
        self.result = SearchResult(label, max_faults, len(cuts), brute_force(len(cuts), max_faults) + 1)
        self.supports: list[Support] = []

    async def run(self) -> SearchResult:
        started = time.monotonic()
        result = self.result
        result.baseline = await self._outcome(frozenset())
        if result.baseline.verdict == BROKEN:
            result.minimal_broken.append(frozenset())  # broken without any fault: nothing to search
            result.complete = True
        else:
            self._learn(result.baseline)
            await self._loop()
        result.minimal_broken = _minimal(result.minimal_broken)
        result.minimal_degraded = _minimal(s for s, o in result.outcomes.items() if s and o.verdict == DEGRADED)
        result.supports = len(self.supports)
        result.seconds = round(time.monotonic() - started, 2)
        return result

    async def _loop(self) -> None:
        result = self.result
        while time.monotonic() < self.deadline:
            pending = candidates(
                self.supports, self.cuts, self.max_faults, result.outcomes, result.minimal_broken, self.rank
            )
            if not pending:
                result.complete = True
                return
            size = len(pending[0])
            batch = [c for c in pending if len(c) == size][: self.parallel]  # never ahead of a smaller size
            outcomes = await asyncio.gather(*(self._outcome(c) for c in batch))
            for chosen, outcome in zip(batch, outcomes, strict=True):
                if outcome.verdict == BROKEN:
                    if not any(bad <= chosen for bad in result.minimal_broken):
                        result.minimal_broken.append(await self._shrink(chosen))
                else:
                    self._learn(outcome)

    def _learn(self, outcome: Outcome) -> None:
        if outcome.support and outcome.support not in self.supports:
            self.supports.append(outcome.support)

    async def _shrink(self, chosen: FaultSet) -> FaultSet:
        ordered = sorted(chosen, key=self.rank.__getitem__)

        async def fails(subset: tuple[Atom, ...]) -> bool:
            return (await self._outcome(frozenset(subset))).verdict == BROKEN

        return frozenset(await ddmin(ordered, fails))

    async def _outcome(self, chosen: FaultSet) -> Outcome:
        known = self.result.outcomes.get(chosen)
        if known is None:
            known = self.result.outcomes[chosen] = await self.experiment(chosen)
            self.result.experiments += 1
            if known.verdict != BROKEN:
                self._learn(known)
        return known


def _minimal(sets: Iterable[FaultSet]) -> list[FaultSet]:
    found = sorted(set(sets), key=lambda s: (len(s), sorted(a.name for a in s)))
    return [s for n, s in enumerate(found) if not any(other < s for other in found[:n])]
