"""A finished run as the post-mortem needs it, read from the run directory alone: what users saw
(``requests.csv``, read by loadtest/requests_reader.py) and when things happened (``journal.jsonl``, read
by chaos/journal.py).

Power windows come from ``power-off``/``power-on`` events per data center; fault windows from
``fault-on``/``fault-off`` (a power cut made by the fault injector is drawn once, as power). A window
still open at the end of the journal closes at the run's end.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chaos.bins import Bin, per_dc_bins
from chaos.journal import Event, EventName, phase_marks, read_events
from chaos.rundir import JOURNAL, REQUESTS_FILE, SCENARIO_FILE
from loadtest.requests_reader import RequestRow, read_all
from services.common.errors import UsageError

# The checks the verdict reads (chaos/engine/walk.py journals them under these phases; the baseline's and the
# recovery's are journaled too, for the live view and the recovery time)
JUDGED_PHASES = ("before", "during", "after")


@dataclass(frozen=True)
class Window:
    kind: str  # "power" or "fault"
    label: str  # "dc-east", "latency views-east", ...
    start: float
    end: float


@dataclass
class RunRecord:
    run_dir: Path
    requests: list[RequestRow]
    events: list[Event]
    windows: list[Window]
    phases: list[tuple[str, float]]  # (name, start) in order
    start: float
    end: float
    meta: dict[str, Any] = field(default_factory=dict)  # the journal's start event: scenario, profile, topology, seed
    probed: tuple[str, ...] = ()  # the symptoms the scenario's hypothesis probes (scenario.yaml)

    def deviations(self) -> list[tuple[float, list[str]]]:
        """(time, the probes that deviated) for every deviated check the verdict judges: the steady state before
        the first fault, during the faults and at the end. Not the baseline's checks while the load settles, nor
        the recovery's until it holds again (its time is the recovery figure): marked, they said "deviated" on
        the picture of a run that held (seen at 200 users: a baseline check at 89% feed success, then 100%)."""
        return [
            (float(e["t"]), [str(p.get("probe")) for p in e.get("probes", []) if p.get("status") == "deviated"])
            for e in self.events
            if e.get("event") == EventName.HYPOTHESIS and e.get("met") is False and e.get("phase") in JUDGED_PHASES
        ]


def load_run(run_dir: Path) -> RunRecord:
    requests = read_all(run_dir / REQUESTS_FILE)
    events = read_events(run_dir / JOURNAL)
    times = [e["t"] for e in events] + [r.t for r in requests]
    if not times:
        raise UsageError(f"{run_dir}: neither {REQUESTS_FILE} nor {JOURNAL} holds anything to report")
    start, end = min(times), max(times + [r.finished for r in requests])
    phases = [(name, t) for t, name in phase_marks(events, run_dir / JOURNAL)]
    meta = next((e for e in events if e["event"] == EventName.START), {})
    return RunRecord(
        run_dir, requests, events, windows(events, end), phases, start, end, meta, probed_symptoms(run_dir)
    )


def probed_symptoms(run_dir: Path) -> tuple[str, ...]:
    """The symptom names the run's hypothesis probes; none when scenario.yaml is missing or unreadable
    (a picture of an old or partial run still draws everything else)."""
    try:
        scenario = yaml.safe_load((run_dir / SCENARIO_FILE).read_text(encoding="utf-8"))
        probes = scenario["hypothesis"]["probes"]
        return tuple(str(p["symptom"]["name"]) for p in probes if isinstance(p, dict) and "symptom" in p)
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return ()


def fault_kind(event: dict[str, Any]) -> str:
    action = event.get("action")
    if isinstance(action, dict):
        return next((k for k in action if k not in ("for", "id")), "fault")
    return str(event.get("kind", "fault"))


def windows(events: Iterable[dict[str, Any]], end: float) -> list[Window]:
    found: list[Window] = []
    dark: dict[str, float] = {}
    faults: dict[str, tuple[str, float]] = {}
    for event in events:
        kind, t = event.get("event"), float(event["t"])
        if kind == EventName.POWER_OFF and "dc" in event:
            dark.setdefault(str(event["dc"]), t)
        elif kind == EventName.POWER_ON and str(event.get("dc")) in dark:
            found.append(Window("power", str(event["dc"]), dark.pop(str(event["dc"])), t))
        elif kind == EventName.FAULT_ON and fault_kind(event) != "power_off":
            faults[str(event.get("id"))] = (fault_kind(event), t)
        elif kind == EventName.FAULT_OFF and str(event.get("id")) in faults:
            label, began = faults.pop(str(event["id"]))
            found.append(Window("fault", label, began, t))
    found += [Window("power", dc, t, end) for dc, t in dark.items()]
    found += [Window("fault", label, t, end) for label, t in faults.values()]
    return sorted(found, key=lambda w: w.start)


def series(record: RunRecord, width_s: float) -> dict[str, list[Bin]]:
    """data center -> success ratio and p99 per time bin (by request start). Every bin from the first
    request to the run's end is there: a bin where no request started has None (users were stuck
    waiting, or gone), so a picture shows a gap instead of a line drawn across it."""
    return per_dc_bins(
        record.requests, lambda r: r.t, record.start, width_s, last=int((record.end - record.start) // width_s)
    )


def seen_series(record: RunRecord, width_s: float) -> dict[str, list[Bin]]:
    """data center -> the requests per time bin of when their answer arrived: when users saw what it showed, and
    what a hypothesis check counts (chaos/engine/hypothesis.py: finished_between). A check at t sums the bins of its
    window, so the symptoms drawn this way are the symptoms the verdict judged. A bin where no answer arrived: None."""
    return per_dc_bins(
        record.requests,
        lambda r: r.finished,
        record.start,
        width_s,
        last=int((record.end - record.start) // width_s),
        first=0,
    )
