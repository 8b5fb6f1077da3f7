"""Faults on real processes: link faults reach the services and go away, instances die and return, boot order.

And the safety net: a fault whose controller is SIGKILLed expires by itself (its lease runs out).
"""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fakes.processes import alive

from chaos.faults.injector import FaultInjector
from chaos.faults.link import LEASE_S
from chaos.faults.model import parse_action
from chaos.journal import Journal
from chaos.runtime.local import LocalRuntime
from chaos.topology import load_topology
from services.common.seed import DEMO_PASSWORD

PROJECT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("live")
    topology = load_topology(PROJECT / "topologies" / "fragile.yaml").with_any_ports()
    runtime = LocalRuntime(topology, run_dir, profile=PROJECT / "profiles" / "naive.yaml")
    with runtime:
        injector = FaultInjector(runtime, Journal(run_dir), random.Random(3))
        try:
            yield runtime, injector
        finally:
            injector.revert_all()
            injector.close()


def faults_on(runtime: LocalRuntime, name: str) -> list[dict]:
    answer = httpx.get(runtime.topology.url(name) + "/admin/faults",
                       headers={"Authorization": f"Bearer {runtime.admin_secret}"}, timeout=5)  # fmt: skip
    assert answer.status_code == 200, answer.text
    return answer.json()


def apply(injector: FaultInjector, body: dict) -> str:
    fault_id, _ = injector.apply(parse_action(body, "test", "body"))
    assert fault_id is not None
    return fault_id


def timed_login(gateway: str) -> tuple[int, float]:
    started = time.monotonic()
    answer = httpx.post(gateway + "/login", json={"username": "viewer-0002", "password": DEMO_PASSWORD}, timeout=30)
    return answer.status_code, time.monotonic() - started


def test_latency_between_data_centers_is_added_live_and_removed(live):
    runtime, injector = live
    west = runtime.topology.gateways()["dc-west"]
    assert timed_login(west)[0] == 200
    fault = apply(injector, {"latency": {"from": "dc-west", "to": "dc-east", "ms": 400}})
    assert [f["kind"] for f in faults_on(runtime, "gateway-west")] == ["latency"]
    assert faults_on(runtime, "gateway-east") == []  # only the callers in dc-west carry it
    status, seconds = timed_login(west)  # gateway-west -> auth-east crosses the link
    assert status == 200 and seconds >= 0.4
    injector.revert(fault)
    assert faults_on(runtime, "gateway-west") == []
    assert timed_login(west)[1] < 0.4


def test_an_error_rate_fails_calls_to_one_service_only(live):
    runtime, injector = live
    fault = apply(injector, {"errors": {"from": "gateway-west", "to": "auth", "rate": 1.0}})
    try:
        assert timed_login(runtime.topology.gateways()["dc-west"])[0] >= 500
        assert timed_login(runtime.topology.gateways()["dc-east"])[0] == 200
    finally:
        injector.revert(fault)
    assert timed_login(runtime.topology.gateways()["dc-west"])[0] == 200


def test_a_brownout_slows_a_service_but_not_its_health_check(live):
    runtime, injector = live
    auth = runtime.topology.url("auth-east")
    fault = apply(injector, {"brownout": {"target": "auth-east", "ms": 500}})
    try:
        started = time.monotonic()
        assert httpx.get(auth + "/healthz").status_code == 200
        assert time.monotonic() - started < 0.4
        assert timed_login(auth)[1] >= 0.5
    finally:
        injector.revert(fault)


def test_a_partition_is_a_blackhole_both_ways(live):
    runtime, injector = live
    fault = apply(injector, {"partition": ["dc-east", "dc-west"], "id": "split"})
    try:
        east_urls = {runtime.topology.url(n) for n in runtime.topology.data_centers["dc-east"].instances}
        west_urls = {runtime.topology.url(n) for n in runtime.topology.data_centers["dc-west"].instances}
        [west_side] = faults_on(runtime, "gateway-west")  # dc-west's callers lose dc-east...
        [east_side] = faults_on(runtime, "gateway-east")  # ...and dc-east's lose dc-west
        assert (west_side["kind"], east_side["kind"]) == ("blackhole", "blackhole")
        assert set(west_side["targets"]) == east_urls and set(east_side["targets"]) == west_urls
        status, seconds = timed_login(runtime.topology.gateways()["dc-west"])
        assert status == 504 and seconds >= 1.0  # no answer ever comes: timeouts, as with a cut link
    finally:
        injector.revert(fault)
    assert faults_on(runtime, "gateway-west") == []


def test_a_killed_instance_dies_alone_and_comes_back(live):
    runtime, injector = live
    before = runtime.status()
    fault = apply(injector, {"kill_instance": "recommender-west"})
    pid = before["recommender-west"]["pid"]
    assert runtime.status()["recommender-west"]["state"] == "powered-off" and not alive([pid])
    assert {n for n, s in runtime.status().items() if s["state"] != "running"} == {"recommender-west"}
    injector.revert(fault)
    after = runtime.status()["recommender-west"]
    assert after["state"] == "running" and after["pid"] != pid
    assert os.getpgid(after["pid"]) == os.getpgid(runtime.status()["gateway-west"]["pid"])  # back in its DC's group
    assert httpx.get(runtime.topology.url("recommender-west") + "/healthz").status_code == 200


def test_power_returns_in_the_boot_order_asked(live):
    runtime, injector = live
    fault = apply(injector, {"power_off": "dc-east"})
    _, output = injector.apply(parse_action(
        {"power_on": {"dc": "dc-east", "boot_order": ["gateway", "views"], "stagger": "300ms"}}, "test", "body"))
    assert output["healthy"] and fault not in injector.active_ids()
    event = [e for e in Journal(runtime.run_dir).read() if e["event"] == "power-on"][-1]
    assert event["boot_order"] == [["gateway-east"], ["views-east"], ["auth-east", "earnings-east", "recommender-east"]]
    pids = event["pids"]
    assert pids["gateway-east"] < pids["views-east"] < pids["auth-east"]
    assert output["seconds"] >= 0.6  # two staggers


CONTROLLER = """
import sys, time
from chaos.faults.link import LinkFaults
from chaos.topology import parse_topology
topology = parse_topology({topology}, "test")
links = LinkFaults(topology, {secret!r})
print(links.add("orphan", ["auth-solo"], {{"kind": "brownout", "targets": [], "latency_ms": 300}}), flush=True)
time.sleep(600)
"""


def test_a_fault_outlives_a_killed_controller_by_at_most_its_lease(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # held by the test and handed to the instance: no port race
    sock.listen(64)
    port = sock.getsockname()[1]
    secret = "admin-" + "x" * 20
    env = {**os.environ, "BLACKOUT_SERVICE": "auth", "BLACKOUT_INSTANCE": "auth-solo", "BLACKOUT_DC": "dc-a",
           "BLACKOUT_PORT": str(port), "BLACKOUT_LISTEN_FD": str(sock.fileno()), "BLACKOUT_DATA_DIR": str(tmp_path),
           "BLACKOUT_TOKEN_SECRET": "t" * 32, "BLACKOUT_ADMIN_SECRET": secret, "BLACKOUT_SERVICE_KEY": "k" * 32}  # fmt: skip
    # The instance is not the controller's child: like a container, it does not die with the controller.
    instance = subprocess.Popen([sys.executable, "-m", "services.common.runner"], env=env, cwd=PROJECT,
                                pass_fds=(sock.fileno(),), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {secret}"}
    topology = {"name": "solo", "data_centers": {"dc-a": {"instances": {"auth-solo": {"service": "auth", "port": port}}}}}
    controller = None
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the instance did not start"
            time.sleep(0.1)
        controller = subprocess.Popen([sys.executable, "-c", CONTROLLER.format(topology=topology, secret=secret)],
                                      cwd=PROJECT, stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert json.loads(controller.stdout.readline().replace("'", '"')) == {"auth-solo": "ok"}
        controller.send_signal(signal.SIGKILL)  # no cleanup, no DELETE: only the lease can end the fault
        controller.wait()
        killed = time.monotonic()
        assert [f["id"] for f in httpx.get(url + "/admin/faults", headers=headers).json()] == ["orphan"]
        while httpx.get(url + "/admin/faults", headers=headers).json():
            assert time.monotonic() - killed < LEASE_S + 3, "the fault outlived its lease"
            time.sleep(0.2)
        assert time.monotonic() - killed > 1  # it did outlive the controller for a while: the lease, not luck
    finally:
        for proc in (controller, instance):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        sock.close()
