"""Real locust processes export what users saw, and the run's Prometheus finds and scrapes them."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from chaos.loadgen import LoadGenerator
from chaos.observability import prometheus
from chaos.runtime.local import LocalRuntime
from chaos.topology import load_topology
from loadtest import metrics as user_metrics

PROJECT = Path(__file__).resolve().parents[3]


@pytest.mark.skipif(
    prometheus.binary() is None, reason="NO PROMETHEUS BINARY: apt-get install -y --no-install-recommends prometheus"
)
def test_locust_exporters_are_found_and_scraped(tmp_path, monkeypatch):
    monkeypatch.delenv(user_metrics.PORT_ENV, raising=False)  # the load generator itself must ask for the port
    topology = load_topology(PROJECT / "topologies" / "fragile.yaml").with_any_ports()
    runtime = LocalRuntime(topology, tmp_path, profile=PROJECT / "profiles" / "naive.yaml")
    with runtime, prometheus.start_prometheus(runtime.topology, tmp_path, {}, port=0) as handle:
        load = LoadGenerator(tmp_path, runtime.topology.gateways(), users=4, max_seconds=60)
        try:
            load.start()
            load.wait_logged_in(timeout_s=60)
            deadline = time.monotonic() + 30
            while True:  # until Prometheus has scraped a logged-in user from a locust process
                result = httpx.get(
                    handle.url + "/api/v1/query",
                    timeout=5,
                    params={
                        "query": 'sum by (job, instance) (blackout_user_requests_total{action="login", outcome="ok"})'
                    },
                ).json()
                if result["data"]["result"]:
                    break
                assert time.monotonic() < deadline, (
                    f"no user metrics scraped; ports: {user_metrics.bound_ports(tmp_path)}"
                )
                time.sleep(0.2)  # poll interval
        finally:
            load.stop()
    series = result["data"]["result"]
    assert {s["metric"]["job"] for s in series} == {"blackout-users"}
    pids = set(user_metrics.bound_ports(tmp_path))
    assert {s["metric"]["instance"] for s in series} <= {f"locust-{pid}" for pid in pids}
    assert str(os.getpid()) not in pids
