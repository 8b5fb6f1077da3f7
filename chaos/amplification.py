"""Retry amplification end to end: every HTTP attempt made for one user action, the app's included.

Headers cannot carry this: when a caller times out it never hears how many attempts its callee made.
So the outage scenario scrapes every running instance's counters at each phase boundary; a phase's
attempts are the counters' increases (a restarted instance counts from zero; a dead one made none),
plus the app's own tries recorded by the load generator. Amplification compares attempts per user
action with the baseline's.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from chaos.instance_client import SCRAPE_S, InstanceClient
from chaos.journal import EventName
from loadtest.requests_reader import RequestRow


def scrape(urls: dict[str, tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """instance -> {"dc", "start", "attempts"} for each (dc, url) that answers."""
    found = {}
    with InstanceClient(SCRAPE_S) as client:
        for name, (dc, url) in urls.items():
            try:
                text = client.get(url + "/metrics").text
            except httpx.HTTPError:
                continue
            values: dict[str, Any] = {"dc": dc, "start": 0.0, "attempts": 0.0}
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    if sample.name == "process_start_time_seconds":
                        values["start"] = sample.value
                    elif sample.name == "blackout_dependency_attempts_total":
                        values["attempts"] += sample.value
            found[name] = values
    return found


def _increase(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]], dc: str | None) -> float:
    total = 0.0
    for name, now in after.items():
        if dc is not None and now.get("dc") != dc:
            continue
        then = before.get(name)
        if then is not None and then["start"] == now["start"]:  # the same process: its counter kept counting
            total += now["attempts"] - then["attempts"]
        else:
            total += now["attempts"]
    return total


def service_attempts(events: list[dict[str, Any]], dc: str | None = None) -> dict[str, int]:
    """phase -> attempts the services (of one data center, or all) made to their dependencies during it."""
    snapshots = [e for e in events if e.get("event") == EventName.METRICS]
    return {b["phase"]: int(_increase(b["instances"], a["instances"], dc)) for b, a in pairwise(snapshots)}


def _per_action(
    phases: list[Any], rows_by_phase: dict[str, list[RequestRow]], attempts: dict[str, int]
) -> dict[str, float]:
    return {
        p.phase: (attempts[p.phase] + sum(r.tries for r in rows)) / len(rows)
        for p in phases
        if p.phase in attempts and (rows := rows_by_phase.get(p.phase, []))
    }


def _versus_baseline(per_action: dict[str, float]) -> dict[str, float]:
    base = per_action.get("baseline")
    return {phase: value / base for phase, value in per_action.items()} if base else {}


def attach(phases: list[Any], rows_by_phase: dict[str, list[RequestRow]], events: list[dict[str, Any]]) -> None:
    """Set attempts_per_request, amplification and amplification_by_dc on each phase summary with data.

    Per data center: the attempts of that data center's instances and the tries of the users whose home
    it is, per action of those users (who are served there unless the edge moves them).
    """
    overall = _per_action(phases, rows_by_phase, service_attempts(events))
    versus = _versus_baseline(overall)
    for phase in phases:
        phase.attempts_per_request = overall.get(phase.phase)
        phase.amplification = versus.get(phase.phase)
    dcs = sorted({r.dc for rows in rows_by_phase.values() for r in rows})
    for dc in dcs:
        homed = {name: [r for r in rows if r.dc == dc] for name, rows in rows_by_phase.items()}
        by_dc = _versus_baseline(_per_action(phases, homed, service_attempts(events, dc)))
        for phase in phases:
            if phase.phase in by_dc:
                phase.amplification_by_dc[dc] = by_dc[phase.phase]
