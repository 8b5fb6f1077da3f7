"""Timers and a score for one exercise, from what users saw (requests.csv) and the team's declarations.

- detect: from the fault's onset to the first declaration after it;
- mitigate: from the onset to the first check, after users were hurt, at which the scenario's hypothesis
  held again (users' success back above it, even with the fault still there: a failover counts);
- recover: from the onset to the first check that held after the last one that deviated.
Checks are recomputed every CHECK_EVERY_S over the run's own rows, so they do not depend on the run living
to its end (a panic stops it). A fault that never hurt users has nothing to mitigate: 0 s, no impact.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from chaos.engine.hypothesis import check, finished_between, steady_rates
from chaos.engine.scenario import Hypothesis
from chaos.rundir import AUDIT_FILE
from loadtest.requests_reader import RequestRow

CHECK_EVERY_S = 2.0
# Points lost, each capped: a team that never acts scores low but not below zero.
START = 1000
UNDETECTED, DETECT_PER_S, DETECT_CAP = 300, 2.0, 300
UNMITIGATED, MITIGATE_PER_S, MITIGATE_CAP = 300, 1.0, 300
UNRECOVERED, RECOVER_PER_S, RECOVER_CAP = 200, 0.5, 200
UNSERVED_SHARE_WEIGHT = 200  # no request served after the onset costs this much
BASELINE_S = 30.0  # the request rate before the onset, over this long, sets what users expected
FALSE_ALARM = 25
LOST_WRITE, LOST_WRITES_CAP = 2, 200


@dataclass
class Score:
    detect_s: float | None
    mitigate_s: float | None
    recover_s: float | None
    users_hurt: bool
    requests: int  # finished after the onset
    failed: int
    expected: int  # requests users would have finished after the onset at the baseline's rate
    unserved: int  # of those, not served: failed, or never answered (a request hanging on a dark DC writes no row)
    lost_writes: int | None  # None: not measured (needs the data-integrity audit)
    false_alarms: int
    points: int

    def to_data(self) -> dict[str, Any]:
        return asdict(self)


def timeline_checks(
    hyp: Hypothesis, rows: list[RequestRow], onset: float, end: float
) -> list[tuple[float, bool | None]]:
    """(time, met) every CHECK_EVERY_S from the onset to the end; the baseline's rates spot starved windows."""
    before = check(
        hyp, finished_between(rows, max(0.0, onset - hyp.window), onset), onset, "before", (onset - hyp.window, onset)
    )
    rates = steady_rates(before)
    checks = []
    t = onset + CHECK_EVERY_S
    while t <= end:
        window = (t - hyp.window, t)
        checks.append((t, check(hyp, finished_between(rows, *window), t, "during", window, rates).met))
        t += CHECK_EVERY_S
    return checks


def score(
    hyp: Hypothesis,
    rows: list[RequestRow],
    onset: float | None,
    end: float,
    declarations: list[float],
    lost_writes: int | None = None,
    panic_at: float | None = None,
) -> Score:
    if onset is None:  # the fault never came (ended early): nothing to detect, every declaration a false alarm
        return Score(
            None, None, None, False, 0, 0, 0, 0, lost_writes, len(declarations), START - FALSE_ALARM * len(declarations)
        )
    # Checks stop with the users: after the load ends every window would look starved (deviated)
    last_answer = max((r.finished for r in rows), default=onset)
    checks = timeline_checks(hyp, rows, onset, min(end, last_answer))
    hurt_at = next((t for t, met in checks if met is False), None)
    mitigated = recovered = None
    if hurt_at is None:
        mitigated = recovered = onset
    else:
        # "no data" (None) is neutral: the load ends with the run, and a quiet window proves nothing either way
        mitigated = next((t for t, met in checks if t > hurt_at and met is True), None)
        last_bad = max(t for t, met in checks if met is False)
        recovered = next((t for t, met in checks if t > last_bad and met is True), None)
        if panic_at is not None and panic_at >= onset:  # the big hammer: every fault gone, the run (and load) over
            mitigated = mitigated if mitigated is not None and mitigated < panic_at else panic_at
            recovered = recovered if recovered is not None and recovered < panic_at else panic_at
    detected = next((t for t in sorted(declarations) if t >= onset), None)
    false_alarms = sum(1 for t in declarations if t < onset)
    after_onset = [r for r in rows if r.t >= onset]
    failed = sum(1 for r in after_onset if not r.ok)
    expected, unserved = missing(rows, onset, min(end, last_answer), failed)
    seconds = {
        name: (None if t is None else round(t - onset, 1))
        for name, t in (("detect", detected), ("mitigate", mitigated), ("recover", recovered))
    }
    points: float = START
    points -= UNDETECTED if seconds["detect"] is None else min(DETECT_CAP, DETECT_PER_S * seconds["detect"])
    points -= UNMITIGATED if seconds["mitigate"] is None else min(MITIGATE_CAP, MITIGATE_PER_S * seconds["mitigate"])
    points -= UNRECOVERED if seconds["recover"] is None else min(RECOVER_CAP, RECOVER_PER_S * seconds["recover"])
    points -= UNSERVED_SHARE_WEIGHT * min(1.0, unserved / expected if expected else 0.0)
    points -= FALSE_ALARM * false_alarms
    points -= min(LOST_WRITES_CAP, LOST_WRITE * (lost_writes or 0))
    return Score(
        seconds["detect"],
        seconds["mitigate"],
        seconds["recover"],
        hurt_at is not None,
        len(after_onset),
        failed,
        expected,
        unserved,
        lost_writes,
        false_alarms,
        max(0, round(points)),
    )


def missing(rows: list[RequestRow], onset: float, until: float, failed: int) -> tuple[int, int]:
    """(expected, unserved) after the onset: a failed request writes a row, a request that hangs on a dark data
    center writes none until it gives up, so the baseline's rate says how many answers users were owed."""
    done = [(r.finished, r.ok) for r in rows]
    start = max(min((d for d, _ in done), default=onset), onset - BASELINE_S)
    rate = sum(1 for d, _ in done if start <= d < onset) / (onset - start) if onset > start else 0.0
    expected = round(rate * max(0.0, until - onset))
    succeeded = sum(1 for d, ok in done if onset <= d <= until and ok)
    return expected, max(failed, expected - succeeded)


def lost_writes(run_dir: Path) -> int | None:
    """Acknowledged views no data center has, from the data-integrity audit's ``audit.json`` in the run
    directory (chaos/audit writes it after a run); None when there is none: the score says "not measured"
    instead of guessing. Read as a file, so the workshop does not depend on the audit's code."""
    try:
        audit = json.loads((run_dir / AUDIT_FILE).read_text())
        return int(audit["lost_acked_everywhere"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
