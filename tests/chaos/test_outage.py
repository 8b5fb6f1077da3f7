"""End to end: the real local stack on free ports, locust driving it, dc-east losing power, then back."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes.processes import alive

from chaos.journal import Journal
from chaos.report import load_summary
from chaos.rundir import REQUESTS_FILE
from loadtest.requests_reader import read_all


@pytest.fixture
def run_dir(naive_run: Path) -> Path:
    return naive_run


def test_the_run_directory_is_the_record_of_the_run(run_dir):
    events = [e["event"] for e in Journal(run_dir).read()]
    for expected in ("start", "up", "load-start", "phase", "power-off", "power-on", "end"):
        assert expected in events
    phases = [e["phase"] for e in Journal(run_dir).read() if e["event"] == "phase"]
    assert phases == ["baseline", "outage", "recovery"]
    for name in ("requests.csv", "writes.csv", "summary.json", "phases.csv", "profile.yaml", "topology.yaml"):
        assert (run_dir / name).stat().st_size > 0, name


def test_the_baseline_is_healthy(run_dir):
    baseline = load_summary(run_dir / "summary.json").phase("baseline")
    assert baseline.actions["feed"].count >= 10
    assert baseline.actions["feed"].success_rate >= 0.95
    assert baseline.symptoms["zero_view_displays"] == 0 and baseline.symptoms["generic_feeds"] == 0


def test_the_outage_shows_the_cascade_in_dc_west(run_dir):
    summary = load_summary(run_dir / "summary.json")
    baseline, outage = summary.phase("baseline"), summary.phase("outage")
    # dc-east's gateway lost power: no feed of its users finished before the power came back
    power_on = next(e["t"] for e in Journal(run_dir).read() if e["event"] == "phase" and e["phase"] == "recovery")
    power_off = next(e["t"] for e in Journal(run_dir).read() if e["event"] == "phase" and e["phase"] == "outage")
    east = [
        r
        for r in read_all(run_dir / REQUESTS_FILE)
        if r.dc == "dc-east" and r.action == "feed" and r.ok and power_off <= r.t < power_on
    ]
    assert all(r.finished >= power_on for r in east)
    symptoms = outage.symptoms
    assert symptoms["generic_feeds"] > 0  # dc-west's recommender cannot read the views log
    assert symptoms["zero_view_displays"] > 0  # ...and counts users had seen are shown as 0
    west_feed = outage.by_dc["dc-west"]["feed"]
    assert west_feed.p50_ms > 5 * baseline.by_dc["dc-west"]["feed"].p99_ms  # timeouts and immediate retries


def test_everything_recovers_after_power_on(run_dir):
    end = next(e["t"] for e in Journal(run_dir).read() if e["event"] == "end")
    late = [r for r in read_all(run_dir / REQUESTS_FILE) if end - 3 <= r.t < end and r.action == "feed"]
    assert {r.dc for r in late} == {"dc-east", "dc-west"}
    assert all(r.ok for r in late)
    writes = (run_dir / "writes.csv").read_text()
    assert "acked" in writes


def test_no_process_is_left_behind(run_dir):
    started = []
    for event in Journal(run_dir).read():
        started += list(event.get("pids", {}).values())
        if event["event"] == "load-start":
            started.append(event["pid"])
    assert len(started) >= 8 + 5 + 1  # 8 instances, dc-east's 5 again after power-on, locust
    assert alive(started) == []
