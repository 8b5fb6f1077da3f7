"""`blackout prometheus RUN_DIR`: a finished run's samples served again until Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fakes.processes import wait_all_gone

from chaos.journal import Journal
from chaos.observability import prometheus
from chaos.observability.prometheus import start_prometheus
from chaos.topology import load_topology

PROJECT = Path(__file__).resolve().parents[3]


@pytest.mark.skipif(
    prometheus.binary() is None, reason="NO PROMETHEUS BINARY: apt-get install -y --no-install-recommends prometheus"
)
def test_a_run_is_served_again_and_ctrl_c_stops_it(tmp_path):
    Journal(tmp_path).record("start")
    with start_prometheus(load_topology(PROJECT / "topologies" / "fragile.yaml"), tmp_path, {}, port=0) as live:
        assert live is not None
        deadline = time.monotonic() + 20
        while not httpx.get(live.url + "/api/v1/query", params={"query": "up"}, timeout=5).json()["data"]["result"]:
            assert time.monotonic() < deadline, "no scrape recorded"
            time.sleep(0.2)  # poll interval
        Journal(tmp_path).record("end")
    command = [sys.executable, "-m", "chaos.cli", "prometheus", str(tmp_path), "--port", "0"]
    cli = subprocess.Popen(command, cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = cli.stdout.readline()
        url = re.search(r"on (http://127\.0\.0\.1:\d+)", first).group(1)
        assert "the run:" in cli.stdout.readline()
        assert httpx.get(url + "/api/v1/query", params={"query": "count_over_time(up[1h])"}, timeout=5).json()["data"][
            "result"
        ]
        pid = _pid_of(url)
    finally:
        cli.send_signal(signal.SIGINT)
        _, err = cli.communicate(timeout=30)
    assert cli.returncode == 130, err
    assert "interrupted" in err
    assert wait_all_gone([pid], timeout_s=10) == []


def _pid_of(url: str) -> int:
    port = int(url.rsplit(":", 1)[1])
    import psutil

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                return conn.pid
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")
