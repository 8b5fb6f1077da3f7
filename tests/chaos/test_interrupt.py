"""Ctrl-C in the middle of the demo tears everything down: services, load generator, all of it."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from fakes.ports import free_port
from fakes.processes import wait_all_gone

from chaos.journal import Journal
from chaos.topology import load_topology

PROJECT = Path(__file__).resolve().parents[2]


def test_ctrl_c_during_the_outage_leaves_nothing_behind(tmp_path):
    topology = load_topology(PROJECT / "topologies" / "fragile.yaml").with_ports(free_port)
    topology_file = tmp_path / "topology.yaml"
    topology_file.write_text(yaml.safe_dump(topology.model_dump()))
    runs = tmp_path / "runs"
    demo = subprocess.Popen(
        [sys.executable, "-m", "chaos.cli", "outage", "--topology", str(topology_file), "--runs", str(runs),
         "--baseline", "3", "--outage", "60", "--recovery", "3", "--users", "4"],
        cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
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
    assert len(pids) == 9 and wait_all_gone(pids, timeout_s=10) == []
    assert events[-1]["event"] == "aborted"
    assert json.loads((journal.path.parent / "state.json").read_text())["groups"] == {}
