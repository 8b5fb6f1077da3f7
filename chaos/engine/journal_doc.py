"""``journal.json``: the run as one document shaped like Chaos Toolkit's journal, and the verdict.

steady_states.before / during / after, every activity of the method (start, end, status, output), every
rollback, the recovery (how long after the last fault was removed the hypothesis held again), the seed.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from chaos.engine.hypothesis import Check
from chaos.engine.scenario import Scenario

JOURNAL_DOC = "journal.json"


class JournalDoc:
    def __init__(self, run_dir: Path, scenario: Scenario, profile: str, seed: int) -> None:
        self.path = run_dir / JOURNAL_DOC
        self.scenario = scenario
        self.profile = profile
        self.seed = seed
        self.start = time.time()
        self.status = "running"
        self.before: Check | None = None
        self.during: list[Check] = []
        self.after: Check | None = None
        self.run: list[dict] = []
        self.rollbacks: list[dict] = []
        self.recovery: dict | None = None
        self.reasons: list[str] = []
        self.deviated = False
        self.load_stopped_at: float | None = None  # seconds into the walk when the users' load was gone

    def start_recovery(self, removed_at: float, within_s: float | None) -> None:
        self.recovery = {"removed_at": removed_at, "within_s": within_s, "recovered_after_s": None}

    def recovery_text(self) -> str:
        assert self.recovery is not None
        after = self.recovery["recovered_after_s"]
        within = self.recovery["within_s"]
        found = "never (within the run)" if after is None else f"held again {after:g}s after the last fault was removed"
        return found + (f" (goal: within {within:g}s)" if within is not None else "")

    def judge(self) -> None:
        """The verdict: the hypothesis deviated when any check deviated or recovery came too late.
        A run whose load stopped has no verdict: its later checks saw no users, not a system."""
        if self.load_stopped_at is not None:
            self.reasons.append(f"load stopped at {self.load_stopped_at:g}s into the scenario: the users' load "
                                "generator exited, so the steady state could not be checked after it (no verdict)")
            return
        if self.before is not None and self.before.met is False:
            self.reasons.append("deviated before the first fault: " + _deviations(self.before))
        elif self.before is not None:
            missing = [p.probe for p in self.before.probes if p.status == "no data"]
            if missing:  # nothing to compare with: the experiment proves nothing (Chaos Toolkit stops here)
                self.reasons.append("no steady state before the first fault: no data for " + ", ".join(missing))
        bad = [c for c in self.during if c.met is False]
        if bad:
            self.reasons.append(f"deviated during the faults at {len(bad)} of {len(self.during)} checks, "
                                f"first: {_deviations(bad[0])}")  # fmt: skip
        if self.after is not None and self.after.met is False:
            self.reasons.append("deviated at the end: " + _deviations(self.after))
        if self.recovery is not None and self.recovery["within_s"] is not None:
            after = self.recovery["recovered_after_s"]
            if after is None or after > self.recovery["within_s"]:
                self.reasons.append(f"not recovered within {self.recovery['within_s']:g}s: {self.recovery_text()}")
        failed = [r for r in self.run if r.get("status") == "failed"]
        for record in failed:
            self.reasons.append(f"action failed: {record['activity']}: {record.get('error')}")

    def write(self) -> None:
        self.deviated = bool(self.reasons) or self.status != "completed"
        end = time.time()
        doc = {
            "blackout_version": "0.1.0",
            "experiment": {"name": self.scenario.name, **self.scenario.model_dump(mode="json", exclude={"name"})},
            "profile": self.profile,
            "seed": self.seed,
            "status": self.status,
            "deviated": self.deviated,
            "load_stopped_at_s": self.load_stopped_at,
            "reasons": self.reasons,
            "start": _iso(self.start),
            "end": _iso(end),
            "duration": round(end - self.start, 3),
            "steady_states": {
                "before": self.before.to_data() if self.before else None,
                "during": [c.to_data() for c in self.during],
                "after": self.after.to_data() if self.after else None,
            },
            "recovery": self.recovery,
            "run": self.run,
            "rollbacks": self.rollbacks,
        }
        self.path.write_text(json.dumps(doc, indent=2, default=str))


def _deviations(result: Check) -> str:
    return "; ".join(f"{p.probe} was {p.shown}" for p in result.probes if p.status == "deviated")


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
