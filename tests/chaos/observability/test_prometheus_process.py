"""A real Prometheus process: started on a port it binds itself, queried, stopped without a trace."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
from fakes.processes import alive

from chaos.observability import prometheus
from chaos.observability.prometheus import PrometheusError, serve_run, start_prometheus
from chaos.topology import load_topology
from services.common.errors import UsageError

PROJECT = Path(__file__).resolve().parents[3]
TOPOLOGY = load_topology(PROJECT / "topologies" / "fragile.yaml")
needs_prometheus = pytest.mark.skipif(
    prometheus.binary() is None,
    reason="NO PROMETHEUS BINARY: apt-get install -y --no-install-recommends prometheus to run this test",
)


def query(url: str, expr: str) -> list[dict]:
    answer = httpx.get(url + "/api/v1/query", params={"query": expr}, timeout=5).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


@needs_prometheus
def test_port_zero_scrapes_every_target_and_stops_cleanly(tmp_path):
    handle = start_prometheus(TOPOLOGY, tmp_path, {"controller": "http://127.0.0.1:9/metrics"}, port=0)
    try:
        assert handle is not None and handle.url.startswith("http://127.0.0.1:") and not handle.notes
        expected = set(TOPOLOGY.instances()) | {"controller"}

        def discovered() -> dict:  # the targets file is read shortly after start
            targets = httpx.get(handle.url + "/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
            found = {t["labels"]["instance"]: t["labels"] for t in targets}
            return found if set(found) == expected else {}

        labels = _poll(discovered)
        assert labels["views-east"]["service"] == "views" and labels["views-east"]["dc"] == "dc-east"
        assert query(handle.url, "vector(1)")[0]["value"][1] == "1"
    finally:
        handle.stop()
    assert not alive([handle.process.pid])
    assert (tmp_path / "prometheus" / "data").is_dir()


@needs_prometheus
def test_a_taken_port_falls_back_to_one_prometheus_binds_itself(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with start_prometheus(TOPOLOGY, tmp_path, {}, port=port) as handle:
            assert not handle.url.endswith(f":{port}")
            assert handle.notes == [f"port {port} was taken; Prometheus listens on {handle.url} instead"]
            assert query(handle.url, "vector(1)")


@needs_prometheus
def test_a_finished_run_is_served_again_with_its_samples(tmp_path):
    with start_prometheus(TOPOLOGY, tmp_path, {}, port=0) as live:
        assert live is not None
        # the first evaluation of the rules and the first scrapes (of dead targets: up == 0)
        _poll(lambda: query(live.url, 'up{instance="views-east"}'))
    with serve_run(tmp_path, port=0) as served:
        assert query(served.url, 'count_over_time(up{instance="views-east"}[1h])')


def test_a_broken_config_is_reported_with_prometheus_own_words(tmp_path):
    if prometheus.binary() is None:
        pytest.skip("NO PROMETHEUS BINARY: apt-get install -y --no-install-recommends prometheus")
    config = tmp_path / "broken.yml"
    config.write_text("global: {scrape_interval: often}\n")
    with pytest.raises(PrometheusError, match="exited with code") as err:
        prometheus.launch(prometheus.binary(), config, tmp_path, 0).stop()
    assert "often" in str(err.value)  # Prometheus's own reason, quoted from its log


def test_without_the_binary_there_is_no_handle_and_serving_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(prometheus, "binary", lambda: None)
    assert start_prometheus(TOPOLOGY, tmp_path, {}, port=0) is None
    with pytest.raises(UsageError, match="apt-get install"):
        serve_run(tmp_path)


def test_serving_a_directory_without_samples_names_it(tmp_path):
    if prometheus.binary() is None:
        pytest.skip("NO PROMETHEUS BINARY: apt-get install -y --no-install-recommends prometheus")
    with pytest.raises(UsageError, match="no prometheus/data here"):
        serve_run(tmp_path)


def _poll(found, timeout_s: float = 20.0):
    import time

    deadline = time.monotonic() + timeout_s
    while not (result := found()):
        assert time.monotonic() < deadline, "Prometheus recorded nothing in time"
        time.sleep(0.2)
    return result
