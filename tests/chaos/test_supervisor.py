"""`blackout up -d`, power-off/on, live profile switch and `down`, as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml
from fakes.processes import wait_all_gone
from fakes.scenarios import short_power_loss

from chaos.control_client import CONTROL_FILE, ControlClient, publish
from chaos.journal import EventName, Journal
from chaos.runtime.pids import CLOCK_SLACK_S
from chaos.supervisor import running_topology
from chaos.topology import load_topology

PROJECT = Path(__file__).resolve().parents[2]


def blackout(*args: str, runs: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chaos.cli", *args, "--runs", str(runs)],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        timeout=180,
    )


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
            "instances"
        ]["gateway-west"]["port"]
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json()["profile"] == "resilient"
    finally:
        down = blackout("down", runs=runs)
    assert down.returncode == 0 and "stopped" in down.stdout
    pids = [control["pid"]] + [p for e in Journal(Path(control["run_dir"])).read() for p in e.get("pids", {}).values()]
    assert wait_all_gone(pids, timeout_s=10) == []
    assert not (runs / ".control.json").exists()
    assert blackout("status", runs=runs).returncode == 1  # nothing is running: a clear message, no trace


def test_a_second_ctrl_c_during_the_teardown_of_up_waits_until_everything_is_rolled_back(tmp_path):
    topology = load_topology(PROJECT / "topologies" / "fragile.yaml").with_any_ports()
    topology_file = tmp_path / "topology.yaml"
    topology_file.write_text(yaml.safe_dump(topology.model_dump()))
    runs = tmp_path / "runs"
    up = subprocess.Popen(
        [sys.executable, "-m", "chaos.cli", "up", "--topology", str(topology_file), "--runs", str(runs)],
        cwd=PROJECT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (runs / ".control.json").exists():
            assert up.poll() is None and time.monotonic() < deadline, "the stack never came up"
            time.sleep(0.1)
        control = json.loads((runs / ".control.json").read_text())
        journal = Journal(Path(control["run_dir"]))
        for dc in ("dc-east", "dc-west"):  # two data centers to power back on: a teardown that takes a while
            assert blackout("power-off", dc, runs=runs).returncode == 0
        up.send_signal(signal.SIGINT)
        while not any(e["event"] == "power-on" for e in journal.read()):  # the teardown is under way
            assert up.poll() is None and time.monotonic() < deadline, "no rollback began"
            time.sleep(0.02)
        up.send_signal(signal.SIGINT)  # impatient: Ctrl-C again
        second = time.time()
        _, stderr = up.communicate(timeout=120)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    assert up.returncode == 130 and "Traceback" not in stderr, stderr
    events = journal.read()
    powered_on = [e for e in events if e["event"] == "power-on"]
    assert [(e["dc"], e["healthy"]) for e in powered_on] == [("dc-west", True), ("dc-east", True)]
    assert powered_on[1]["t"] > second  # the second Ctrl-C came while dc-east was coming back...
    assert {e["id"] for e in events if e["event"] == "fault-off"} == {"power-off-1", "power-off-2"}  # ...and waited
    pids = [control["pid"]] + [p for e in events for p in e.get("pids", {}).values()]
    assert len(pids) == 1 + 8 + 8 and wait_all_gone(pids, timeout_s=10) == []
    assert json.loads((Path(control["run_dir"]) / "state.json").read_text())["groups"] == {}
    assert not (runs / ".control.json").exists()


def test_the_control_file_of_a_killed_supervisor_does_not_block_up_once_its_pid_is_someone_elses(tmp_path):
    topology = load_topology(PROJECT / "topologies" / "fragile.yaml").with_any_ports()
    topology_file = tmp_path / "topology.yaml"
    topology_file.write_text(yaml.safe_dump(topology.model_dump()))
    runs = tmp_path / "runs"
    assert blackout("up", "--detach", "--topology", str(topology_file), runs=runs).returncode == 0
    path = runs / ".control.json"
    control, written = json.loads(path.read_text()), path.stat()
    os.kill(control["pid"], signal.SIGKILL)  # no teardown: the control file stays behind
    pids = [control["pid"]] + [p for e in Journal(Path(control["run_dir"])).read() for p in e.get("pids", {}).values()]
    assert wait_all_gone(pids, timeout_s=10) == []
    while time.time() < written.st_mtime + 2 * CLOCK_SLACK_S:  # the stranger must start clearly after the file
        time.sleep(0.1)
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        # As if the kernel had handed the dead supervisor's pid to the stranger: the file names a live process.
        path.write_text(json.dumps({**control, "pid": stranger.pid}))
        os.utime(path, ns=(written.st_atime_ns, written.st_mtime_ns))
        again = blackout("up", "--detach", "--topology", str(topology_file), runs=runs)
        assert again.returncode == 0, again.stderr
        second = json.loads(path.read_text())
        assert second["pid"] != stranger.pid
        assert blackout("up", "--detach", "--topology", str(topology_file), runs=runs).returncode == 1  # a live one
    finally:
        down = blackout("down", runs=runs)
        stranger.kill()
        stranger.wait()
    assert down.returncode == 0 and "stopped" in down.stdout
    assert not path.exists()
    pids = [second["pid"]] + [p for e in Journal(Path(second["run_dir"])).read() for p in e.get("pids", {}).values()]
    assert len(pids) == 1 + 8 and wait_all_gone(pids, timeout_s=10) == []


def test_the_running_topology_comes_from_the_journal_every_runtime_writes(tmp_path):
    """`blackout profile` notes a profile meant for another topology than the running one. It read that from
    state.json, which only the local runtime writes: against a Docker stack the command crashed after switching.
    The `up` event is recorded by every runtime (here as chaos/runtime/docker.py records it)."""
    stack = tmp_path / "stack"
    stack.mkdir()
    Journal(stack).record(EventName.UP, topology="fragile", runtime="docker", run_id="r1", pids={}, ports={})
    publish(
        tmp_path / CONTROL_FILE, {"url": "http://127.0.0.1:9", "token": "t", "pid": os.getpid(), "run_dir": str(stack)}
    )
    assert not (stack / "state.json").exists()
    assert running_topology(ControlClient(tmp_path)) == "fragile"
