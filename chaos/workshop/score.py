"""Timers and a score for one round, from what users saw (requests.csv), the team's declarations, hints,
actions and its answer to the page: a score that rewards diagnosis (detect, localize, find the root cause,
mitigate), after AIOpsLab's task levels and ITBench's strict root-cause scoring.

- detect: from the fault's onset to the first declaration after it;
- mitigate: from the onset to the first check, after users were hurt, at which the scenario's hypothesis
  held again (users' success back above it, even with the fault still there: a failover counts; a request
  unanswered through the whole window is a failure in it: half the users hanging is not mitigated);
- recover: from the onset to the first check that held after the last one that deviated (reported, not scored);
- acknowledge: from the page (chaos/workshop/pager.py) to the team's ack; scored only when a page was sent.
Checks are recomputed every CHECK_EVERY_S over the run's own rows, so they do not depend on the run living
to its end (a panic stops it). A fault that never hurt users has nothing to mitigate: 0 s, no impact.
The team's diagnosis is its last declaration: localization and root cause are scored on it, strictly (a
fault type is right or wrong; a place is inside the fault's targets, around them in the right data center,
or wrong). docs/workshop.md states the formula with a worked example.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chaos.engine.hypothesis import check, finished_between, steady_counts, waiting_through
from chaos.engine.scenario import Hypothesis
from chaos.rundir import AUDIT_FILE
from loadtest.requests_reader import RequestRow

CHECK_EVERY_S = 2.0
BASELINE_S = 30.0  # the request rate before the onset, over this long, sets what users expected

# The parts: each is worth at most its maximum; they add up to START. Acknowledge counts only when a page was
# sent: with none it is not scored (not given, not taken), and the round is out of START - ACK_MAX. A fault users
# never felt was mitigated at once (0 s); a control round gives every other part in full.
ACK_MAX, ACK_PER_S = 100, 2.0  # the page answered within seconds; 0 if never acknowledged
NO_PAGE = "no page"  # why acknowledge is not scored
DETECT_MAX, DETECT_PER_S = 150, 1.0  # 0 if never declared after the onset
LOCALIZE_MAX = 150  # x 1 inside the fault's targets, x 0.5 around them (right data center), x 0 wrong
ROOT_CAUSE_MAX = 150  # the fault type, strictly: right or nothing
MITIGATE_MAX, MITIGATE_PER_S = 250, 1.0  # 0 if users were never served again
IMPACT_MAX = 200  # x the share of requests users were owed after the onset that were served
START = ACK_MAX + DETECT_MAX + LOCALIZE_MAX + ROOT_CAUSE_MAX + MITIGATE_MAX + IMPACT_MAX  # 1000
AROUND = 0.5  # localization's share for a coarser place in the right data center
# Penalties, taken off the sum (never below 0)
FALSE_ALARM = 100  # a declaration before the onset, or any declaration in a no-fault control round
HARMFUL = 100  # an action after which users' success fell (HARM_DROP, over the hypothesis' window)
HARM_DROP = 0.10
ACTION = 10  # every action taken: the team's changes are risk, even the right ones
HINT_COSTS = (25, 50, 100)  # the card's hint ladder: the nearer the answer, the dearer
LOST_WRITE, LOST_WRITES_CAP = 2, 200


@dataclass(frozen=True)
class Place:
    """A data center, service or instance, resolved in the stack's topology: the instances it names."""

    name: str
    instances: frozenset[str]
    dcs: frozenset[str]
    is_dc: bool


@dataclass(frozen=True)
class Declared:
    t: float
    symptom: str
    where: Place
    fault: str


@dataclass(frozen=True)
class Acted:
    t: float
    action: str
    target: str | None


@dataclass(frozen=True)
class Truth:
    """What the round really was: no fault (a control round), or faults of these types on these instances."""

    control: bool
    instances: frozenset[str] = frozenset()
    dcs: frozenset[str] = frozenset()
    fault_types: frozenset[str] = frozenset()


@dataclass
class Score:
    control: bool
    detect_s: float | None
    mitigate_s: float | None
    recover_s: float | None
    ack_s: float | None  # None: no page, or never acknowledged (paged says which)
    paged: bool
    users_hurt: bool
    requests: int  # finished after the onset
    failed: int
    expected: int  # requests users would have finished after the onset at the baseline's rate
    unserved: int  # of those, not served: failed, or never answered (a request hanging on a dark DC writes no row)
    lost_writes: int | None  # None: not measured (needs the data-integrity audit)
    false_alarms: int
    localization: float  # 1, AROUND or 0: the diagnosis' place
    root_cause: bool  # the diagnosis' fault type
    diagnosis: dict[str, Any] | None  # the last declaration: symptom, where, fault
    hints: int
    actions: int
    harmful: list[str]  # the actions after which users' success fell
    parts: dict[str, int] = field(default_factory=dict)  # part -> points earned, for the parts scored
    not_scored: dict[str, str] = field(default_factory=dict)  # part -> why this round cannot score it
    out_of: int = START  # the most the scored parts give
    penalties: dict[str, int] = field(default_factory=dict)  # penalty -> points lost
    points: int = 0

    def to_data(self) -> dict[str, Any]:
        return asdict(self)


def localization(where: Place, truth: Truth) -> float:
    """1: the declared place is inside the fault's targets; AROUND: a data center holding them, or a service
    or instance overlapping them; 0: anywhere else (a wrong data center above all)."""
    if not truth.instances:
        return 0.0
    if where.instances <= truth.instances:
        return 1.0
    if where.is_dc:
        return AROUND if where.dcs <= truth.dcs else 0.0
    return AROUND if where.instances & truth.instances else 0.0


def harmful_actions(
    rows: Sequence[RequestRow], actions: Sequence[Acted], window: float, min_requests: int
) -> list[str]:
    """The actions after which users' success fell by HARM_DROP or more: the window after each against the
    window before, both with enough finished requests to say (a quiet window proves nothing)."""

    def success(lo: float, hi: float) -> float | None:
        done = [r.ok for r in rows if lo <= r.finished < hi]
        return sum(done) / len(done) if len(done) >= min_requests else None

    harmful = []
    for a in actions:
        before, after = success(a.t - window, a.t), success(a.t, a.t + window)
        if before is not None and after is not None and after < before - HARM_DROP:
            harmful.append(f"{a.action} {a.target or ''}".strip())
    return harmful


def timeline_checks(
    hyp: Hypothesis, rows: list[RequestRow], onset: float, end: float
) -> list[tuple[float, bool | None]]:
    """(time, met) every CHECK_EVERY_S from the onset to the end; the baseline's counts spot starved windows, and
    a user still waiting through a window was not served in it."""
    before = check(
        hyp, finished_between(rows, max(0.0, onset - hyp.window), onset), onset, "before", (onset - hyp.window, onset)
    )
    steady = steady_counts(before)
    times = [onset + CHECK_EVERY_S * n for n in range(1, int((end - onset) // CHECK_EVERY_S) + 1)]
    if end > onset and (not times or times[-1] < end):
        times.append(end)  # the round's last moment too: users back 1.97 s after the last check were never seen
    checks = []
    for t in times:
        window = (t - hyp.window, t)
        answered, waiting = finished_between(rows, *window), waiting_through(rows, *window)
        checks.append((t, check(hyp, answered, t, "during", window, steady, waiting).met))
    return checks


def score(
    hyp: Hypothesis,
    rows: list[RequestRow],
    onset: float | None,
    end: float,
    declarations: Sequence[Declared],
    truth: Truth,
    *,
    lost_writes: int | None = None,
    panic_at: float | None = None,
    hints: int = 0,
    actions: Sequence[Acted] = (),
    paged_at: float | None = None,
    acked_at: float | None = None,
) -> Score:
    diagnosis = max(declarations, key=lambda d: d.t, default=None)
    harmful = harmful_actions(rows, actions, hyp.window, hyp.min_requests)
    ack_s = None if paged_at is None or acked_at is None else round(max(0.0, acked_at - paged_at), 1)
    seconds: dict[str, float | None] = {"detect": None, "mitigate": None, "recover": None}
    hurt_at: float | None = None
    requests = failed = expected = unserved = 0
    located, right_type = 0.0, False
    if truth.control or onset is None:
        # no fault (a control round) or none yet (ended early): nothing to find, every declaration a false alarm
        false_alarms = len(declarations)
        parts = {"detect": DETECT_MAX, "localize": LOCALIZE_MAX, "root cause": ROOT_CAUSE_MAX}
        parts |= {"mitigate": MITIGATE_MAX, "impact": IMPACT_MAX}
    else:
        # Checks stop with the users: after the load ends every window would look starved (deviated)
        last_answer = max((r.finished for r in rows), default=onset)
        checks = timeline_checks(hyp, rows, onset, min(end, last_answer))
        hurt_at = next((t for t, met in checks if met is False), None)
        mitigated: float | None = onset
        recovered: float | None = onset
        if hurt_at is not None:
            # "no data" (None) is neutral: the load ends with the run, and a quiet window proves nothing
            mitigated = next((t for t, met in checks if t > hurt_at and met is True), None)
            last_bad = max(t for t, met in checks if met is False)
            recovered = next((t for t, met in checks if t > last_bad and met is True), None)
            if panic_at is not None and panic_at >= onset:  # every fault gone, the run (and load) over
                mitigated = mitigated if mitigated is not None and mitigated < panic_at else panic_at
                recovered = recovered if recovered is not None and recovered < panic_at else panic_at
        after = [d for d in declarations if d.t >= onset]
        detected = min((d.t for d in after), default=None)
        false_alarms = len(declarations) - len(after)
        after_onset = [r for r in rows if r.t >= onset]
        requests, failed = len(after_onset), sum(1 for r in after_onset if not r.ok)
        expected, unserved = missing(rows, onset, min(end, last_answer), failed)
        for name, t in (("detect", detected), ("mitigate", mitigated), ("recover", recovered)):
            seconds[name] = None if t is None else round(t - onset, 1)
        if diagnosis is not None and diagnosis.t >= onset:
            located, right_type = localization(diagnosis.where, truth), diagnosis.fault in truth.fault_types
        parts = {
            "detect": _timed(DETECT_MAX, DETECT_PER_S, seconds["detect"]),
            "localize": round(LOCALIZE_MAX * located),
            "root cause": ROOT_CAUSE_MAX if right_type else 0,
            "mitigate": _timed(MITIGATE_MAX, MITIGATE_PER_S, seconds["mitigate"]),
            "impact": round(IMPACT_MAX * (1.0 - min(1.0, unserved / expected if expected else 0.0))),
        }
    not_scored: dict[str, str] = {"acknowledge": NO_PAGE} if paged_at is None else {}
    if paged_at is not None:
        parts = {"acknowledge": _timed(ACK_MAX, ACK_PER_S, ack_s), **parts}
    penalties = {
        "false alarms": FALSE_ALARM * false_alarms,
        "hints": sum(HINT_COSTS[:hints]),
        "harmful actions": HARMFUL * len(harmful),
        "actions taken": ACTION * len(actions),
        "lost writes": min(LOST_WRITES_CAP, LOST_WRITE * (lost_writes or 0)),
    }
    return Score(
        control=truth.control,
        detect_s=seconds["detect"],
        mitigate_s=seconds["mitigate"],
        recover_s=seconds["recover"],
        ack_s=ack_s,
        paged=paged_at is not None,
        users_hurt=hurt_at is not None,
        requests=requests,
        failed=failed,
        expected=expected,
        unserved=unserved,
        lost_writes=lost_writes,
        false_alarms=false_alarms,
        localization=located,
        root_cause=right_type,
        diagnosis=None if diagnosis is None else {**asdict(diagnosis), "where": diagnosis.where.name},
        hints=hints,
        actions=len(actions),
        harmful=harmful,
        parts=parts,
        not_scored=not_scored,
        out_of=START - (ACK_MAX if paged_at is None else 0),
        penalties=penalties,
        points=max(0, sum(parts.values()) - sum(penalties.values())),
    )


def _timed(most: int, per_s: float, seconds: float | None) -> int:
    return 0 if seconds is None else max(0, round(most - per_s * seconds))


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
