"""The controller's gauges: power, faults, phase and hypothesis, served on their own registry."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from chaos.observability.controller_metrics import ControllerMetrics, metrics_asgi_app, serve_metrics


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_power_faults_phase_and_hypothesis_are_served_over_http():
    metrics = ControllerMetrics()
    server = serve_metrics(metrics, port=0)
    try:
        metrics.set_power("dc-east", True)
        metrics.set_power("dc-west", True)
        metrics.set_phase("baseline")
        metrics.set_power("dc-east", False)
        metrics.set_phase("outage")
        metrics.set_faults("latency", 2)
        metrics.set_hypothesis(False)
        got = samples(httpx.get(server.url, timeout=5).text)
    finally:
        server.stop()
    assert got[("blackout_dc_power", (("dc", "dc-east"),))] == 0
    assert got[("blackout_dc_power", (("dc", "dc-west"),))] == 1
    assert got[("blackout_scenario_phase", (("phase", "baseline"),))] == 0  # one phase at a time
    assert got[("blackout_scenario_phase", (("phase", "outage"),))] == 1
    assert got[("blackout_controller_faults_active", (("kind", "latency"),))] == 2
    assert got[("blackout_hypothesis_ok", ())] == 0
    assert not any(name.startswith("process_") or name.startswith("python_") for name, _ in got)  # its own registry


def test_the_asgi_app_mounts_beside_an_api_that_needs_a_token():
    metrics = ControllerMetrics()
    metrics.set_power("dc-east", True)
    app = FastAPI()
    app.mount("/metrics", metrics_asgi_app(metrics))
    with TestClient(app) as client:
        answer = client.get("/metrics/")
    assert answer.status_code == 200
    assert 'blackout_dc_power{dc="dc-east"} 1.0' in answer.text


def test_a_negative_number_of_faults_is_refused():
    with pytest.raises(ValueError, match="latency=-1"):
        ControllerMetrics().set_faults("latency", -1)
