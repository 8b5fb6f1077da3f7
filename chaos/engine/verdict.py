"""The verdict of a run, in one place: the walk, the audit and the run return findings (sentences); this pure
function adds what the hypothesis checks, the recovery and the actions say, and decides.

Deviated when there is any reason, or the run did not complete (interrupted, aborted); a run whose load stopped
has no verdict on its checks (it counts as deviated, its one reason says why).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chaos.engine.hypothesis import Check, ProbeResult


@dataclass(frozen=True)
class Verdict:
    deviated: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Evidence:
    """What the checks of one run found (JournalDoc holds it while the run goes on)."""

    status: str  # running, completed, interrupted, aborted
    before: Check | None
    during: Sequence[Check]
    after: Check | None
    recovery: dict[str, Any] | None  # removed_at, within_s, recovered_after_s
    actions: Sequence[dict[str, Any]]  # the method's activity records
    load_stopped_at: float | None = None  # seconds into the walk when the users' load was gone


def judge(evidence: Evidence, findings: Sequence[str] = ()) -> Verdict:
    """The hypothesis deviated when any check deviated, recovery came too late, an action failed, or anything
    else found a reason (``findings``: the walk's, the run's, the audit's, in that order)."""
    if evidence.load_stopped_at is not None:  # later checks saw no users, not a system: no verdict on them
        stopped = (
            f"load stopped at {evidence.load_stopped_at:g}s into the scenario: the users' load generator "
            "exited, so the steady state could not be checked after it (no verdict)"
        )
        return Verdict(True, (stopped, *findings))
    reasons: list[str] = []
    before = evidence.before
    if before is not None and before.met is False:
        reasons.append("deviated before the first fault: " + _deviations(before))
    elif before is not None:
        missing = [p.probe for p in before.probes if p.status == "no data"]
        if missing:  # nothing to compare with: the experiment proves nothing (Chaos Toolkit stops here)
            reasons.append("no steady state before the first fault: no data for " + ", ".join(missing))
    bad = [c for c in evidence.during if c.met is False]
    if bad:
        reasons.append(
            f"deviated during the faults at {len(bad)} of {len(evidence.during)} checks, first: {_deviations(bad[0])}; "
            f"worst: {_worst(bad)}"
        )
    if evidence.after is not None and evidence.after.met is False:
        reasons.append("deviated at the end: " + _deviations(evidence.after))
    recovery = evidence.recovery
    if recovery is not None and recovery["within_s"] is not None:
        after = recovery["recovered_after_s"]
        if after is None or after > recovery["within_s"]:
            reasons.append(f"not recovered within {recovery['within_s']:g}s: {recovery_text(recovery)}")
    for record in evidence.actions:
        if record.get("status") == "failed":
            reasons.append(f"action failed: {record['activity']}: {record.get('error')}")
    reasons.extend(findings)
    return Verdict(bool(reasons) or evidence.status != "completed", tuple(reasons))


def recovery_text(recovery: dict[str, Any]) -> str:
    after = recovery["recovered_after_s"]
    within = recovery["within_s"]
    found = "never (within the run)" if after is None else f"held again {after:g}s after the last fault was removed"
    return found + (f" (goal: within {within:g}s)" if within is not None else "")


def _deviations(result: Check) -> str:
    return "; ".join(f"{p.probe} was {p.shown}" for p in result.probes if p.status == "deviated")


def _worst(checks: Sequence[Check]) -> str:
    """Each probe that deviated, at its worst check and in how many (the first check need not show them all: the
    0-view displays of feeds answered after the first failures)."""
    worst: dict[str, tuple[ProbeResult, int]] = {}
    for c in checks:
        for p in c.probes:
            if p.status != "deviated":
                continue
            seen, n = worst.get(p.probe, (p, 0))
            worst[p.probe] = (p if _worse(p, seen) else seen, n + 1)
    return "; ".join(f"{name} was {p.shown} ({n} checks)" for name, (p, n) in worst.items())


def _worse(a: ProbeResult, b: ProbeResult) -> bool:
    """``a`` further from its tolerance than ``b``: lower for a minimum (>=), higher for a maximum (<=)."""
    if a.value is None or b.value is None:
        return False  # a window too thin to measure is no worse than a measured one
    return a.value < b.value if a.tolerance.startswith(">=") else a.value > b.value
