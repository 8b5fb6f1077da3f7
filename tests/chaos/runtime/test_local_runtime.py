"""The real local stack: real processes on free loopback ports, really killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest
from fakes.processes import alive, wait_all_gone

from chaos.journal import Journal
from chaos.runtime import local
from chaos.runtime.base import RuntimeError_
from chaos.runtime.local import LocalRuntime
from chaos.topology import load_topology
from services.common.errors import ConfigError
from services.common.seed import DEMO_PASSWORD

PROJECT = Path(__file__).resolve().parents[3]
NAIVE = PROJECT / "profiles" / "naive.yaml"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    topology = load_topology(PROJECT / "topologies" / "fragile.yaml").with_any_ports()
    runtime = LocalRuntime(topology, tmp_path_factory.mktemp("run"), profile=NAIVE)
    with runtime:
        yield runtime
    started = [pid for e in Journal(runtime.run_dir).read() for pid in e.get("pids", {}).values()]
    assert started and not alive(started), "a process outlived `down`"


def login(client: httpx.Client, gateway: str) -> dict:
    token = client.post(gateway + "/login", json={"username": "viewer-0002", "password": DEMO_PASSWORD}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def test_each_data_center_is_one_process_group(stack):
    status = stack.status()
    assert {s["state"] for s in status.values()} == {"running"}
    groups = {dc: {os.getpgid(s["pid"]) for s in status.values() if s["dc"] == dc} for dc in ("dc-east", "dc-west")}
    assert all(len(g) == 1 for g in groups.values())
    assert groups["dc-east"] != groups["dc-west"]


def test_state_json_keeps_every_pid_with_its_start_time(stack):
    state = json.loads((stack.run_dir / "state.json").read_text())
    assert abs(state["supervisor_started"] - psutil.Process().create_time()) < 1
    for name, info in state["instances"].items():
        assert abs(info["started"] - psutil.Process(info["pid"]).create_time()) < 1, name


def test_a_data_center_whose_processes_all_died_is_not_signalled_by_its_old_group_number(stack, monkeypatch):
    west = {name: s["pid"] for name, s in stack.status().items() if s["dc"] == "dc-west"}
    for pid in west.values():
        os.kill(pid, signal.SIGKILL)  # they die on their own: not through the runtime
    assert wait_all_gone(list(west.values()), timeout_s=10) == []
    signalled: list[int] = []
    killpg = os.killpg
    monkeypatch.setattr(local.os, "killpg", lambda group, sig: (signalled.append(group), killpg(group, sig)))
    stack.power_off("dc-west")  # the old group number is free now: it may be a stranger's group
    assert signalled == []
    assert stack.power_on("dc-west").healthy
    pids = [s["pid"] for s in stack.status().values() if s["dc"] == "dc-west"]
    assert not set(pids) & set(west.values()) and len({os.getpgid(pid) for pid in pids}) == 1  # a new group
    stack.power_off("dc-west")  # a live group is signalled as before
    assert len(signalled) == 1 and wait_all_gone(pids, timeout_s=10) == []
    assert stack.power_on("dc-west").healthy


def test_power_loss_kills_dc_east_and_the_cascade_reaches_dc_west(stack):
    topology = stack.topology
    west, east = topology.gateways()["dc-west"], topology.gateways()["dc-east"]
    with httpx.Client(timeout=30) as client:
        headers = login(client, west)
        before = client.get(west + "/feed", headers=headers).json()["items"]
        assert all(i["views_status"] == "ok" for i in before) and any(i["views"] > 0 for i in before)
        east_pids = [s["pid"] for s in stack.status().values() if s["dc"] == "dc-east"]

        event = stack.power_off("dc-east")

        assert set(event.instances) == set(topology.data_centers["dc-east"].instances)
        assert not alive(east_pids)
        assert {s["state"] for s in stack.status().values() if s["dc"] == "dc-east"} == {"powered-off"}
        with pytest.raises(httpx.TimeoutException):  # a dead host behind a live switch: no refusal, no answer
            client.get(east + "/healthz", timeout=0.5)
        assert client.get(west + "/healthz").status_code == 200
        during = client.get(west + "/feed", headers=headers)
        assert during.status_code == 200
        items = during.json()["items"]
        assert {i["source"] for i in items} == {"generic"}  # recommender-west cannot read the views log
        assert {i["views"] for i in items} == {0}  # and every count shows 0: the outage's symptom
        assert (
            client.post(west + "/videos/video-0001/view", json={"event_id": "lost"}, headers=headers).status_code >= 500
        )

        stack.power_on("dc-east")

        after = client.get(west + "/feed", headers=headers).json()["items"]
        assert {i["source"] for i in after} <= {"personalized", "trending"}
        assert any(i["views"] > 0 for i in after)


def test_power_commands_refuse_unknown_or_repeated_requests(stack):
    with pytest.raises(ConfigError, match="known data centers: dc-east, dc-west"):
        stack.power_off("dc-north")
    with pytest.raises(RuntimeError_, match="already powered on"):
        stack.power_on("dc-west")


SUPERVISOR = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
from chaos.runtime.local import LocalRuntime
from chaos.topology import load_topology
topology = load_topology({topology!r}).with_any_ports()
runtime = LocalRuntime(topology, Path({run_dir!r}))
runtime.up()
print(json.dumps([s["pid"] for s in runtime.status().values()]), flush=True)
time.sleep(600)
"""


def test_a_killed_supervisor_leaves_no_process_behind(tmp_path):
    script = SUPERVISOR.format(
        tests=str(PROJECT / "tests"), topology=str(PROJECT / "topologies" / "fragile.yaml"), run_dir=str(tmp_path)
    )
    supervisor = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=PROJECT)
    try:
        pids = json.loads(supervisor.stdout.readline())
        assert len(pids) == 8 and not set(pids) - set(alive(pids))
    finally:
        supervisor.send_signal(signal.SIGKILL)  # no cleanup code runs in the supervisor
        supervisor.wait()
    assert wait_all_gone(pids, timeout_s=10) == []


def test_a_service_that_cannot_start_is_reported_with_its_log(tmp_path):
    topology = load_topology(PROJECT / "topologies" / "fragile.yaml").with_any_ports()
    broken = tmp_path / "broken-profile.yaml"
    broken.write_text("name: broken\ndefault: {timeout_s: -1}\n")
    runtime = LocalRuntime(topology, tmp_path / "run", profile=broken, health_timeout_s=30)
    with pytest.raises(RuntimeError_, match="exited with code") as err:
        with runtime:
            pass
    assert "timeout_s" in str(err.value)
    assert runtime.status() and all(s["state"] == "powered-off" for s in runtime.status().values())
