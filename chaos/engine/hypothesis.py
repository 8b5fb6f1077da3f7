"""Checking the steady-state hypothesis against what users saw (requests.csv rows)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from chaos.engine.scenario import Hypothesis, Probe
from chaos.report_model import percentile
from loadtest.requests_reader import RequestRow


@dataclass
class ProbeResult:
    probe: str
    status: str  # "held" | "deviated" | "no data"
    value: float | None
    tolerance: str
    requests: int
    shown: str = "-"  # the value as a person reads it (95%, 1200 ms, 3)

    def to_data(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Check:
    """One look at the steady state: the time, the window it covered and every probe's result."""

    t: float
    phase: str
    window: tuple[float, float]
    probes: list[ProbeResult]

    @property
    def met(self) -> bool | None:
        """True: every probe held; False: one deviated; None: no probe had data (a window without requests
        proves nothing, so it cannot hold)."""
        if any(p.status == "deviated" for p in self.probes):
            return False
        return True if any(p.status == "held" for p in self.probes) else None

    @property
    def recovered(self) -> bool:
        """Every probe held, each on data of its own. After a fault a probe without data is no sign of recovery:
        a stuck naive stack's logins take ~9 s to fail, or are too few in a window, while the logged-in users'
        feeds succeed; "held" on the feeds alone called such a stack recovered."""
        return all(p.status == "held" for p in self.probes)

    def to_data(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "phase": self.phase,
            "window": list(self.window),
            "steady_state_met": self.met,
            "probes": [p.to_data() for p in self.probes],
        }


def finished_between(
    rows: Iterable[RequestRow], start: float, end: float, started_after: float = 0.0
) -> list[RequestRow]:
    """Rows of requests that started at/after ``started_after`` and finished within [start, end)."""
    return [r for r in rows if start <= r.finished < end and r.t >= started_after]


# Fewer finished requests than this share of the steady state's rate: users are not being answered...
STARVED_SHARE = 0.5
# ...unless chance explains it: a window's count of a rare action (logins, ~1 in 100 actions: 8 in a window) is a
# Poisson count, and 3 of 8 comes by luck 4% of the time: a recovered stack's logins looked starved now and then
# (retry-storm's held round). A shortfall less likely than this is no luck (0 of 5: 0.7%; 2 of 20: 0.0005%).
STARVED_CHANCE = 0.01


def below_chance(seen: int, expected: float) -> bool:
    """P(X <= seen) < STARVED_CHANCE for a Poisson count X of mean ``expected`` (its CDF, summed in logs so a mean
    of thousands does not overflow; hand-written: one CDF is no reason for scipy)."""
    return (
        sum(math.exp(k * math.log(expected) - expected - math.lgamma(k + 1)) for k in range(seen + 1)) < STARVED_CHANCE
    )


def check(
    hypothesis: Hypothesis,
    rows: list[RequestRow],
    t: float,
    phase: str,
    window: tuple[float, float],
    steady_rates: dict[str, float] | None = None,
) -> Check:
    """``steady_rates``: probe -> requests/s seen before the first fault. A success-rate probe whose requests
    stopped finishing (they hang on a dark data center) deviates instead of having "no data"."""
    seconds = max(window[1] - window[0], 1e-9)
    results = []
    for probe in hypothesis.probes:
        result = evaluate(probe, rows, hypothesis.min_requests)
        expected = (steady_rates or {}).get(result.probe, 0.0) * seconds
        if (
            probe.success_rate is not None
            and expected >= hypothesis.min_requests
            and result.requests < STARVED_SHARE * expected
            and below_chance(result.requests, expected)
        ):
            result = ProbeResult(
                result.probe,
                "deviated",
                result.value,
                result.tolerance,
                result.requests,
                f"only {result.requests} of ~{expected:.0f} requests answered",
            )
        results.append(result)
    return Check(t, phase, window, results)


def steady_rates(before: Check) -> dict[str, float]:
    seconds = max(before.window[1] - before.window[0], 1e-9)
    return {p.probe: p.requests / seconds for p in before.probes}


def evaluate(probe: Probe, rows: list[RequestRow], min_requests: int) -> ProbeResult:
    label = probe.label()
    if not rows:
        return ProbeResult(label, "no data", None, "", 0)
    if probe.symptom is not None:
        name, limit = probe.symptom.name, probe.symptom.max
        value = sum(r.symptom(name) for r in rows)
        status = "held" if value <= limit else "deviated"
        return ProbeResult(label, status, value, f"<= {limit}", len(rows), str(value))
    where = probe.success_rate or probe.p99
    assert where is not None
    chosen = [
        r for r in rows if (where.action is None or r.action == where.action) and (where.dc is None or r.dc == where.dc)
    ]
    if len(chosen) < (where.min_requests or min_requests):
        return ProbeResult(label, "no data", None, "", len(chosen))
    if probe.success_rate is not None:
        rate = sum(1 for r in chosen if r.ok) / len(chosen)
        status = "held" if rate >= probe.success_rate.min else "deviated"
        return ProbeResult(label, status, round(rate, 4), f">= {probe.success_rate.min}", len(chosen), f"{rate:.0%}")
    assert probe.p99 is not None
    p99 = percentile([r.latency_ms for r in chosen], 99)
    status = "held" if p99 is not None and p99 <= probe.p99.max_ms else "deviated"
    return ProbeResult(label, status, p99, f"<= {probe.p99.max_ms:g} ms", len(chosen), f"{p99:.0f} ms")
