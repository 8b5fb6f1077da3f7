from __future__ import annotations

from types import SimpleNamespace

import pytest

from chaos.amplification import attach, service_attempts
from loadtest.requests_reader import RequestRow


def snap(phase: str, **instances: tuple[str, float, float]) -> dict:
    return {
        "event": "metrics",
        "phase": phase,
        "instances": {n: {"dc": dc, "start": st, "attempts": a} for n, (dc, st, a) in instances.items()},
    }


def test_service_attempts_are_counter_increases_and_a_restart_counts_from_zero():
    events = [
        snap("baseline", gw=("east", 1, 0), rec=("west", 1, 0)),
        snap("outage", gw=("east", 1, 200), rec=("west", 1, 100), views=("west", 1, 7)),  # views appeared
        snap("recovery", gw=("east", 1, 500), rec=("west", 1, 700)),  # views died: no attempts we can count
        snap("end", gw=("east", 1, 800), rec=("west", 2, 50)),  # rec restarted (new start time)
    ]
    assert service_attempts(events) == {"baseline": 307, "outage": 900, "recovery": 350}
    assert service_attempts(events, "west") == {"baseline": 107, "outage": 600, "recovery": 50}


def tried(tries: int, dc: str) -> RequestRow:
    return RequestRow(t=0, dc=dc, action="feed", ok=True, latency_ms=1, tries=tries)


def phases(*names: str) -> list[SimpleNamespace]:
    return [
        SimpleNamespace(phase=p, attempts_per_request=None, amplification=None, amplification_by_dc={}) for p in names
    ]


def test_amplification_counts_the_apps_tries_too_and_compares_with_the_baseline():
    events = [
        snap("baseline", gw=("east", 1, 0)),
        snap("outage", gw=("east", 1, 200)),
        snap("recovery", gw=("east", 1, 1400)),
        snap("end", gw=("east", 1, 1400)),
    ]
    summary = phases("baseline", "outage", "recovery")
    rows = {
        "baseline": [tried(1, "east")] * 100,  # (200 + 100) / 100 = 3 per action
        "outage": [tried(3, "east")] * 50,  # (1200 + 150) / 50 = 27 per action
        "recovery": [],  # no user actions: no ratio
    }
    attach(summary, rows, events)
    assert summary[0].attempts_per_request == 3.0 and summary[0].amplification == 1.0
    assert summary[1].attempts_per_request == 27.0 and summary[1].amplification == pytest.approx(9.0)
    assert summary[2].attempts_per_request is None and summary[2].amplification is None


def test_per_data_center_amplification_uses_its_instances_and_its_users():
    events = [
        snap("baseline", e=("east", 1, 0), w=("west", 1, 0)),
        snap("outage", e=("east", 1, 100), w=("west", 1, 100)),
        snap("end", w=("west", 1, 1000)),
    ]  # east went dark during the outage
    summary = phases("baseline", "outage")
    rows = {
        "baseline": [tried(1, "east")] * 50 + [tried(1, "west")] * 50,
        "outage": [tried(3, "east")] * 10 + [tried(1, "west")] * 50,
    }
    attach(summary, rows, events)
    assert summary[1].amplification_by_dc["west"] == pytest.approx(((900 + 50) / 50) / 3)
    assert summary[1].amplification_by_dc["east"] == pytest.approx(((0 + 30) / 10) / 3)
