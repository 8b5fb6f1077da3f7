"""`blackout up -d`, power-off/on, live profile switch and `down`, as a user runs them."""
from __future__ import annotations

import json
import time
import subprocess
import sys
from pathlib import Path

import httpx
import yaml
from fakes.processes import wait_all_gone
from fakes.scenarios import short_power_loss

from chaos.journal import Journal
from chaos.topology import load_topology

PROJECT = Path(__file__).resolve().parents[2]


def blackout(*args: str, runs: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chaos.cli", *args, "--runs", str(runs)],
        capture_output=True, text=True, cwd=PROJECT, timeout=180,
    )  # fmt: skip


def test_a_stack_started_in_the_background_is_driven_and_stopped_by_commands(tmp_path):
    topology = load_topology(PROJECT / "topologies" / "fragile.yaml").with_any_ports()
    topology_file = tmp_path / "topology.yaml"
    topology_file.write_text(yaml.safe_dump(topology.model_dump()))
    runs = tmp_path / "runs"
    up = blackout("up", "--detach", "--topology", str(topology_file), runs=runs)
    assert up.returncode == 0, up.stderr
    control = json.loads((runs / ".control.json").read_text())
    try:
        assert oct((runs / ".control.json").stat().st_mode & 0o777) == "0o600"
        assert control["url"].startswith("http://127.0.0.1:")
        assert httpx.get(control["url"] + "/status").status_code == 401  # no token, no action

        off = blackout("power-off", "dc-east", runs=runs)
        assert off.returncode == 0 and "5 instances killed" in off.stdout
        status = blackout("status", runs=runs).stdout
        assert status.count("powered-off") == 5
        assert blackout("power-off", "dc-mars", runs=runs).returncode == 2
        assert blackout("power-on", "dc-east", runs=runs).returncode == 0

        # a scenario run on the running stack, started and followed through the control API
        auth = {"Authorization": f"Bearer {control['token']}"}
        # (over HTTP a scenario is a library name: the stack's own library is <runs>/scenarios)
        short = short_power_loss(runs / "scenarios", off_at=2, on_at=5, duration=12, users=4)
        started = httpx.post(control["url"] + "/runs", json={"scenario": short.stem}, headers=auth)
        assert started.status_code == 202 and started.json()["running"] is True
        again = httpx.post(control["url"] + "/runs", json={"scenario": short.stem}, headers=auth)
        assert again.status_code == 409
        deadline = time.monotonic() + 120
        while (run := httpx.get(control["url"] + "/runs/current", headers=auth).json())["running"]:
            assert time.monotonic() < deadline, "the run never ended"
            time.sleep(0.5)
        assert "run_dir" in run["result"], run
        doc = json.loads((Path(run["result"]["run_dir"]) / "journal.json").read_text())
        assert doc["status"] == "completed" and [a["activity"] for a in doc["run"]][0] == {"power_off": "dc-east"}
        assert blackout("status", runs=runs).stdout.count("running") == 8  # the stack lives on after its run

        # the kill switch during a run answers at once; the run rolls its faults back and stops early
        dark = runs / "scenarios" / "long-dark.yaml"
        dark.write_text(short_power_loss(tmp_path, off_at=2, on_at=40, duration=60, users=4).read_text())
        assert httpx.post(control["url"] + "/runs", json={"scenario": "long-dark"}, headers=auth).status_code == 202
        deadline = time.monotonic() + 60
        while httpx.get(control["url"] + "/status", headers=auth).json()["power"]["dc-east"]:
            assert time.monotonic() < deadline, "the run never cut dc-east"
            time.sleep(0.1)  # poll interval
        started_at = time.monotonic()
        panic = httpx.post(control["url"] + "/panic", headers=auth, timeout=10)
        assert panic.status_code == 200 and time.monotonic() - started_at < 1.0 and panic.json()["stopped_run"]
        deadline = time.monotonic() + 120
        while (run := httpx.get(control["url"] + "/runs/current", headers=auth).json())["running"]:
            assert time.monotonic() < deadline, "the run never ended after the panic"
            time.sleep(0.5)  # poll interval
        assert httpx.get(control["url"] + "/status", headers=auth).json()["power"] == {"dc-east": True, "dc-west": True}
        doc = json.loads((Path(run["result"]["run_dir"]) / "journal.json").read_text())
        assert any("stopped early" in r for r in doc["reasons"]) and doc["rollbacks"][0]["status"] == "succeeded"

        switched = blackout("profile", str(PROJECT / "profiles" / "resilient.yaml"), runs=runs)
        assert switched.returncode == 0 and switched.stdout.count(": ok") == 8
        port = httpx.get(control["url"] + "/status", headers={"Authorization": f"Bearer {control['token']}"}).json()[
            "instances"]["gateway-west"]["port"]  # fmt: skip
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json()["profile"] == "resilient"
    finally:
        down = blackout("down", runs=runs)
    assert down.returncode == 0 and "stopped" in down.stdout
    pids = [control["pid"]] + [p for e in Journal(Path(control["run_dir"])).read() for p in e.get("pids", {}).values()]
    assert wait_all_gone(pids, timeout_s=10) == []
    assert not (runs / ".control.json").exists()
    assert blackout("status", runs=runs).returncode == 1  # nothing is running: a clear message, no trace
