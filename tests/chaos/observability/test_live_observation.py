"""A run observed while it goes: gauges follow the journal's events, Prometheus records, a post-mortem at the end."""

from __future__ import annotations

import queue
import time
from pathlib import Path

import httpx
import pytest
from fakes.processes import alive
from test_postmortem import synthetic_run

from chaos.observability import prometheus
from chaos.observability.controller_metrics import ControllerMetrics
from chaos.observability.live import observe_run
from chaos.observability.prometheus import INSTALL_HINT
from chaos.topology import load_topology

PROJECT = Path(__file__).resolve().parents[3]
TOPOLOGY = load_topology(PROJECT / "topologies" / "fragile.yaml")


class Bus:
    """The smallest event bus: what the scenario engine publishes its journal on."""

    def __init__(self) -> None:
        self.queues: list[queue.Queue] = []

    def subscribe(self) -> queue.Queue:
        self.queues.append(q := queue.Queue())
        return q

    def unsubscribe(self, q: queue.Queue) -> None:
        self.queues.remove(q)

    def publish(self, event: dict) -> None:
        for q in self.queues:
            q.put(event)


def test_journal_events_drive_the_gauges():
    metrics = ControllerMetrics()
    for event in (
        {"event": "phase", "phase": "outage"},
        {"event": "power-off", "dc": "dc-east"},
        {"event": "fault-on", "id": "a", "action": {"latency": {"ms": 100}}},
        {"event": "fault-on", "id": "b", "action": {"latency": {"ms": 100}, "for": "3s"}},
        {"event": "fault-on", "id": "c", "action": {"partition": {"between": ["dc-east", "dc-west"]}}},
        {"event": "fault-off", "id": "a", "kind": "latency"},
        {"event": "fault-off", "id": "unknown", "kind": "latency"},
        {"event": "hypothesis", "phase": "outage", "met": False},
    ):
        metrics.observe(event)
    value = metrics.registry.get_sample_value
    assert value("blackout_dc_power", {"dc": "dc-east"}) == 0
    assert value("blackout_controller_faults_active", {"kind": "latency"}) == 1
    assert value("blackout_controller_faults_active", {"kind": "partition"}) == 1
    assert value("blackout_scenario_phase", {"phase": "outage"}) == 1
    assert value("blackout_hypothesis_ok", {}) == 0


def test_a_run_is_recorded_and_ends_with_a_post_mortem(tmp_path):
    run_dir = synthetic_run(tmp_path / "run")
    bus, said = Bus(), []
    metrics = ControllerMetrics()
    with observe_run(TOPOLOGY, run_dir, bus, port=0, metrics=metrics, say=said.append) as observed:
        assert metrics.registry.get_sample_value("blackout_dc_power", {"dc": "dc-east"}) == 1
        bus.publish({"event": "power-off", "dc": "dc-east", "t": time.time()})
        deadline = time.monotonic() + 10
        while 'blackout_dc_power{dc="dc-east"} 0.0' not in httpx.get(observed.controller.url, timeout=5).text:
            assert time.monotonic() < deadline, "the gauge never followed the event"
            time.sleep(0.05)  # poll interval
        handle = observed.prometheus
    assert bus.queues == []  # unsubscribed
    assert (run_dir / "timeline.png").exists() and (run_dir / "report.md").exists()
    assert said[-1] == f"post-mortem: {run_dir / 'report.md'} and timeline.png"
    if prometheus.binary() is None:
        assert said[0] == INSTALL_HINT and handle is None
    else:
        assert (
            handle is not None
            and said[0] == f"Prometheus records the run on {handle.url} (dashboards: docker compose up grafana)"
        )
        assert not alive([handle.process.pid])


def test_a_quiet_runs_gauges_follow_power_alone(tmp_path, monkeypatch):
    """An exercise's round: a team can scrape these gauges, so no fault, phase or check reaches them."""
    monkeypatch.setattr(prometheus, "binary", lambda: None)
    bus, metrics = Bus(), ControllerMetrics()
    with observe_run(TOPOLOGY, tmp_path, bus, port=0, metrics=metrics, say=lambda _: None, quiet=True) as observed:
        now = time.time()
        bus.publish({"event": "phase", "phase": "outage", "t": now})
        bus.publish({"event": "fault-on", "id": "latency-1", "action": {"latency": {}}, "t": now})
        bus.publish({"event": "hypothesis", "met": True, "t": now})
        bus.publish({"event": "power-off", "dc": "dc-east", "t": now})
        deadline = time.monotonic() + 10
        while 'blackout_dc_power{dc="dc-east"} 0.0' not in (text := httpx.get(observed.controller.url).text):
            assert time.monotonic() < deadline, "the gauge never followed the power event"
            time.sleep(0.05)  # poll interval
    # the events are followed in order: the earlier ones were seen, and left out
    assert "blackout_scenario_phase{" not in text and "blackout_controller_faults_active{" not in text
    assert "blackout_hypothesis_ok 0.0" in text


def test_without_requests_the_run_says_why_there_is_no_post_mortem(tmp_path, monkeypatch):
    monkeypatch.setattr(prometheus, "binary", lambda: None)
    said: list[str] = []
    with observe_run(TOPOLOGY, tmp_path, port=0, metrics=ControllerMetrics(), say=said.append):
        pass
    assert said == [
        INSTALL_HINT,
        f"no post-mortem: {tmp_path / 'requests.csv'}: not found (a run directory holds the requests.csv its load generator wrote)",
    ]


def test_the_module_functions_feed_the_shared_registry():
    from chaos.observability import controller_metrics as cm

    cm.set_power("dc-north", False)
    cm.set_faults("blackhole", 3)
    cm.set_phase("baseline")
    cm.set_hypothesis(True)
    value = cm.CONTROLLER.registry.get_sample_value
    assert value("blackout_dc_power", {"dc": "dc-north"}) == 0
    assert value("blackout_controller_faults_active", {"kind": "blackhole"}) == 3
    assert value("blackout_hypothesis_ok", {}) == 1
    with pytest.raises(ValueError):
        cm.set_faults("blackhole", -1)


def test_a_prometheus_that_will_not_start_does_not_stop_the_run(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise prometheus.PrometheusError("Prometheus exited with code 1 while starting; the end of its log: ...")

    monkeypatch.setattr(prometheus, "start_prometheus", broken)
    said: list[str] = []
    with observe_run(
        TOPOLOGY, synthetic_run(tmp_path / "run"), port=0, metrics=ControllerMetrics(), say=said.append
    ) as seen:
        assert seen.prometheus is None
    assert said[0].startswith("no live metrics: Prometheus exited with code 1")
    assert said[-1].startswith("post-mortem: ")
