"""The one model of a run's report: what the builder (chaos/report.py) makes and every renderer (terminal,
markdown, picture) reads. It depends on neither, so nothing imports in a circle."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel

from services.common.names import USER_ACTIONS

ACTION_ORDER = USER_ACTIONS  # the order reports list them in


class ActionStats(BaseModel):
    count: int
    ok: int
    success_rate: float | None  # ok / count, None when count is 0
    p50_ms: float | None
    p99_ms: float | None


class PhaseSummary(BaseModel):
    phase: str
    t_start: float
    t_end: float | None  # None: the journal has no later mark
    requests: int
    success_rate: float | None
    actions: dict[str, ActionStats]
    by_dc: dict[str, dict[str, ActionStats]]  # dc -> action -> stats
    symptoms: dict[str, int]  # symptom name -> count, in the order of services/common/symptoms.py
    attempts: int
    calls: int
    retry_amplification: float | None  # attempts / calls, None when no calls
    # end to end, from every instance's counters (chaos.amplification); None without metrics snapshots
    attempts_per_request: float | None = None
    amplification: float | None = None
    amplification_by_dc: dict[str, float] = {}
    feed_success_by_dc: dict[str, float | None]


class RunSummary(BaseModel):
    run: str
    phases: list[PhaseSummary]
    warmup_requests: int
    after_end_requests: int

    def phase(self, name: str) -> PhaseSummary | None:
        return next((p for p in self.phases if p.phase == name), None)


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (the smallest value with at least ``pct``% of values at or below it)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]
