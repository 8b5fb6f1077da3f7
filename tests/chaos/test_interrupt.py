"""Ctrl-C in the middle of the demo tears everything down: services, load generator, all of it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from fakes.processes import wait_all_gone
from fakes.scenarios import short_power_loss

from chaos.journal import Journal
from chaos.topology import load_topology

PROJECT = Path(__file__).resolve().parents[2]


def test_ctrl_c_during_the_outage_leaves_nothing_behind(tmp_path):
    topology = load_topology(PROJECT / "topologies" / "fragile.yaml").with_any_ports()
    topology_file = tmp_path / "topology.yaml"
    topology_file.write_text(yaml.safe_dump(topology.model_dump()))
    runs = tmp_path / "runs"
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chaos.cli",
            "run",
            str(short_power_loss(tmp_path, off_at=3, on_at=63, duration=70)),
            "--topology",
            str(topology_file),
            "--runs",
            str(runs),
            "--users",
            "4",
        ],
        cwd=PROJECT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        journal = None
        while time.monotonic() < deadline and demo.poll() is None:  # wait until the power is off
            found = list(runs.glob("*/journal.jsonl"))
            if found and any(e["event"] == "power-off" for e in Journal(found[0].parent).read()):
                journal = Journal(found[0].parent)
                break
            time.sleep(0.2)
        assert journal is not None, "the demo never cut the power"
        # While it runs, the run's controller answers the usual commands...
        status = blackout("status", runs=runs)
        assert status.returncode == 0 and status.stdout.count("powered-off") == 5
        added = blackout("fault", "add", "{latency: {from: dc-west, to: auth, ms: 50}, id: slow-auth}", runs=runs)
        assert added.returncode == 0 and "slow-auth" in added.stdout, added.stderr
        assert "slow-auth" in blackout("fault", "list", runs=runs).stdout
        demo.send_signal(signal.SIGINT)
        _, stderr = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 130
    assert "interrupted" in stderr and "Traceback" not in stderr
    events = journal.read()
    pids = [pid for e in events for pid in e.get("pids", {}).values()]
    pids += [e["pid"] for e in events if e["event"] == "load-start"]
    # 8 instances, locust, and dc-east's 5 again: the rollback restores power before everything stops
    assert len(pids) == 14 and wait_all_gone(pids, timeout_s=10) == []
    assert "aborted" in [e["event"] for e in events]
    assert [e["event"] for e in events].index("aborted") < [e["event"] for e in events].index("power-on")
    assert json.loads((journal.path.parent / "state.json").read_text())["groups"] == {}
    doc = json.loads((journal.path.parent / "journal.json").read_text())
    assert doc["status"] == "interrupted" and doc["deviated"] is True
    # ...and Ctrl-C rolls back everything, the fault added by hand included, newest first
    assert [r["id"] for r in doc["rollbacks"]] == ["slow-auth", "power-off-1"]
    assert {r["status"] for r in doc["rollbacks"]} == {"succeeded"}
    assert not (runs / ".control.json").exists()


def blackout(*args: str, runs: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chaos.cli", *args, "--runs", str(runs)],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        timeout=60,
    )
