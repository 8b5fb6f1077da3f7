"""Checking the steady-state hypothesis against what users saw (requests.csv rows)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
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
    served: int = 0  # a success-rate probe's requests that succeeded, counted even when too few to judge a rate

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


def waiting_through(rows: Iterable[RequestRow], start: float, end: float) -> list[RequestRow]:
    """Rows of requests that started before ``start`` and were still unanswered at ``end``: users who waited
    through the whole window. Only a look back at a finished run sees them (a row is written when its request
    ends); without them, half the users hanging on a dark gateway read as the other half's success."""
    return [r for r in rows if r.t < start and r.finished >= end]


# Fewer requests served (answered with success) than this share of the steady state's rate: users are not being
# served. Served, not answered: dc-west's users in a partition got 1-4 answers a window, every one an error, too few
# to judge a rate (min_requests) and, as answers, too many for the rule below: the window read "no data" and the
# check held while not one of them was served...
STARVED_SHARE = 0.5
# ...unless chance explains it. Both counts are samples: the window before the first fault is as noisy as the one
# judged. A rare action (logins, ~1 in 100 actions: 8-19 in a 16-s window at tens of users) gave 18 before the
# fault and 7 after it with every login answered, and taking 18 as the true rate called that starved (0.3% for a
# Poisson count of mean 18). Given both counts, the one judged is binomial. And a run judges ~15 overlapping
# windows after each fault: at 1% a window, 6 logins after 19 (0.7%, all answered) called a healthy stack starved
# in one of five seeds. A shortfall less likely than 0.1% under one shared rate is no luck (0 after 18: 0.0004%;
# 1 after 18: 0.004%; 2 after 20: 0.006%; a stopped feed: far less); one more likely only looks like "no data".
STARVED_CHANCE = 0.001


@dataclass(frozen=True)
class Steady:
    """A probe's requests served in the window before the first fault, and that window's length."""

    served: int
    seconds: float

    def expected(self, seconds: float) -> float:
        return self.served * seconds / self.seconds


def below_chance(seen: int, seconds: float, steady: Steady) -> bool:
    """P(X <= seen) < STARVED_CHANCE, X the count in a window of ``seconds`` given ``seen + steady.served``
    requests served in both windows at one rate: binomial with p = seconds / (seconds + steady.seconds) (the conditional
    test of two Poisson counts; its CDF summed in logs, so thousands of requests do not overflow; hand-written:
    one CDF is no reason to import scipy at every start)."""
    n, p = seen + steady.served, seconds / (seconds + steady.seconds)
    if p >= 1.0:
        return False
    log_p, log_q = math.log(p), math.log1p(-p)
    chance = sum(
        math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_p + (n - k) * log_q)
        for k in range(seen + 1)
    )
    return chance < STARVED_CHANCE


def check(
    hypothesis: Hypothesis,
    rows: list[RequestRow],
    t: float,
    phase: str,
    window: tuple[float, float],
    steady: dict[str, Steady] | None = None,
    waiting: list[RequestRow] | None = None,
) -> Check:
    """``steady``: probe -> its requests served before the first fault (``steady_counts``). A success-rate probe whose
    requests stopped finishing (they hang on a dark data center) deviates instead of having "no data".
    ``waiting`` (``waiting_through``): requests unanswered through the whole window, each a failure of its
    success-rate probe; the starvation rule counts the requests served (never these)."""
    seconds = max(window[1] - window[0], 1e-9)
    unanswered = [replace(r, ok=False, counts={}) for r in waiting or ()]
    results = []
    for probe in hypothesis.probes:
        waited = _chosen(probe, unanswered) if probe.success_rate is not None else []
        result = evaluate(probe, rows + waited, hypothesis.min_requests)
        before = (steady or {}).get(result.probe)
        expected = before.expected(seconds) if before is not None else 0.0
        if (
            before is not None
            and probe.success_rate is not None
            and expected >= hypothesis.min_requests
            and result.served < STARVED_SHARE * expected
            and below_chance(result.served, seconds, before)
        ):
            shown = f"only {result.served} of ~{expected:.0f} requests served"
            result = replace(result, status="deviated", shown=shown)
        results.append(result)
    return Check(t, phase, window, results)


def steady_counts(before: Check) -> dict[str, Steady]:
    seconds = max(before.window[1] - before.window[0], 1e-9)
    return {p.probe: Steady(p.served, seconds) for p in before.probes}


def _chosen(probe: Probe, rows: list[RequestRow]) -> list[RequestRow]:
    """The rows a success-rate or p99 probe judges: its action's, in its data center."""
    where = probe.success_rate or probe.p99
    assert where is not None
    return [
        r for r in rows if (where.action is None or r.action == where.action) and (where.dc is None or r.dc == where.dc)
    ]


def evaluate(probe: Probe, rows: list[RequestRow], min_requests: int) -> ProbeResult:
    label = probe.label()
    if not rows:
        return ProbeResult(label, "no data", None, "", 0)
    if probe.symptom is not None:
        name, limit = probe.symptom.name, probe.symptom.max
        value = sum(r.symptom(name) for r in rows)
        status = "held" if value <= limit else "deviated"
        return ProbeResult(label, status, value, f"<= {limit}", len(rows), str(value))
    chosen = _chosen(probe, rows)
    where = probe.success_rate or probe.p99
    assert where is not None
    served = sum(1 for r in chosen if r.ok) if probe.success_rate is not None else 0
    if len(chosen) < (where.min_requests or min_requests):
        return ProbeResult(label, "no data", None, "", len(chosen), served=served)
    if probe.success_rate is not None:
        rate = served / len(chosen)
        status = "held" if rate >= probe.success_rate.min else "deviated"
        tolerance = f">= {probe.success_rate.min}"
        return ProbeResult(label, status, round(rate, 4), tolerance, len(chosen), f"{rate:.0%}", served)
    assert probe.p99 is not None
    p99 = percentile([r.latency_ms for r in chosen], 99)
    status = "held" if p99 is not None and p99 <= probe.p99.max_ms else "deviated"
    return ProbeResult(label, status, p99, f"<= {probe.p99.max_ms:g} ms", len(chosen), f"{p99:.0f} ms")
