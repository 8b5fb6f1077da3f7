"""``journal.json``: the run as one document shaped like Chaos Toolkit's journal, with its verdict
(chaos/engine/verdict.py).

steady_states.before / during / after, every activity of the method (start, end, status, output), every
rollback, the recovery (how long after the last fault was removed the hypothesis held again), the seed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from chaos.engine.hypothesis import Check
from chaos.engine.scenario import Scenario
from chaos.engine.verdict import Evidence, Verdict
from chaos.rundir import JOURNAL_DOC


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
        self.run: list[dict[str, Any]] = []
        self.rollbacks: list[dict[str, Any]] = []
        self.recovery: dict[str, Any] | None = None
        self.load_stopped_at: float | None = None  # seconds into the walk when the users' load was gone

    def start_recovery(self, removed_at: float, within_s: float | None) -> None:
        self.recovery = {"removed_at": removed_at, "within_s": within_s, "recovered_after_s": None}

    def evidence(self) -> Evidence:
        return Evidence(
            self.status, self.before, self.during, self.after, self.recovery, self.run, self.load_stopped_at
        )

    def write(self, verdict: Verdict) -> None:
        end = time.time()
        doc = {
            "blackout_version": "0.1.0",
            "experiment": {"name": self.scenario.name, **self.scenario.model_dump(mode="json", exclude={"name"})},
            "profile": self.profile,
            "seed": self.seed,
            "status": self.status,
            "deviated": verdict.deviated,
            "load_stopped_at_s": self.load_stopped_at,
            "reasons": list(verdict.reasons),
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


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
