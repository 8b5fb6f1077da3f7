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
import threading
import time
from pathlib import Path

import httpx
import pytest
from fakes.processes import alive

from chaos.faults import link
from chaos.faults.actions import parse_action
from chaos.faults.injector import FaultInjector
from chaos.faults.link import LEASE_S
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
    answer = httpx.get(
        runtime.topology.url(name) + "/admin/faults",
        headers={"Authorization": f"Bearer {runtime.admin_secret}"},
        timeout=5,
    )
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
    _, output = injector.apply(
        parse_action(
            {"power_on": {"dc": "dc-east", "boot_order": ["gateway", "views"], "stagger": "300ms"}}, "test", "body"
        )
    )
    assert output["healthy"] and fault not in injector.active_ids()
    event = [e for e in Journal(runtime.run_dir).read() if e["event"] == "power-on"][-1]
    assert event["boot_order"] == [["gateway-east"], ["views-east"], ["auth-east", "earnings-east", "recommender-east"]]
    pids = event["pids"]
    assert pids["gateway-east"] < pids["views-east"] < pids["auth-east"]
    assert output["seconds"] >= 0.6  # two staggers


def test_a_removal_waits_out_a_hung_carrier_instead_of_forgetting_its_fault(live):
    runtime, injector = live
    fault = apply(injector, {"brownout": {"target": "auth-east", "ms": 200}})
    pid = runtime.status()["auth-east"]["pid"]
    outcome: dict = {}
    os.kill(pid, signal.SIGSTOP)  # hung, not dead: its port accepts and nothing answers
    try:
        removal = threading.Thread(target=lambda: outcome.update(injector.revert(fault)))
        removal.start()
        time.sleep(1.5)  # the length of the hang: longer than one DELETE waits for an answer
        assert removal.is_alive() and fault in injector.active_ids()  # not forgotten while unconfirmed
    finally:
        os.kill(pid, signal.SIGCONT)
    removal.join(10)
    assert outcome == {fault: {"auth-east": "ok"}}
    assert faults_on(runtime, "auth-east") == [] and fault not in injector.active_ids()


def test_a_removal_never_confirmed_is_reported_and_the_fault_stays_active(live, monkeypatch):
    runtime, injector = live
    monkeypatch.setattr(link, "REMOVE_WITHIN_S", 1.5)
    fault = apply(injector, {"brownout": {"target": "auth-east", "ms": 200}})
    pid = runtime.status()["auth-east"]["pid"]
    os.kill(pid, signal.SIGSTOP)  # hung for longer than a removal retries
    try:
        [result] = injector.revert_all()  # a panic: one honest failure, not a success, and not two failures
        assert (result["id"], result["status"]) == (fault, "failed")
        assert f"FaultNotLifted: fault {fault} was not lifted on auth-east" in result["error"]
        assert fault in injector.active_ids()  # still listed, as it may still be in force
        failed = [e for e in Journal(runtime.run_dir).read() if e["event"] == "fault-off-failed"]
        assert [e["id"] for e in failed] == [fault] and "FaultNotLifted" in failed[0]["error"]
    finally:
        os.kill(pid, signal.SIGCONT)
    # Resumed, the instance runs the DELETEs that timed out; the renewals keep it as the controller lists it.
    deadline = time.monotonic() + 3 * link.RENEW_S + 5
    while [f["id"] for f in faults_on(runtime, "auth-east")] != [fault]:
        assert time.monotonic() < deadline, "an active fault was not renewed"
        time.sleep(0.1)
    assert injector.revert(fault) == {fault: {"auth-east": "ok"}}
    assert faults_on(runtime, "auth-east") == [] and fault not in injector.active_ids()


def test_dark_carriers_do_not_starve_the_renewals_of_the_others(live, monkeypatch):
    runtime, injector = live
    monkeypatch.setattr(link, "LEASE_S", 3.0)  # shorter leases, so the test is short; the ratio is what counts
    monkeypatch.setattr(link, "RENEW_S", 0.5)
    apply(injector, {"power_off": "dc-west"})
    try:
        for n in range(4):  # one after the other, four dark carriers' timeouts outlast a 3-s lease
            apply(injector, {"brownout": {"target": "gateway-west", "ms": 10}, "id": f"dark-{n}"})
        live_fault = apply(injector, {"brownout": {"target": "auth-east", "ms": 10}})
        watched_until = time.monotonic() + 2 * 3.0
        while time.monotonic() < watched_until:
            assert [f["id"] for f in faults_on(runtime, "auth-east")] == [live_fault], "its lease ran out"
            time.sleep(0.1)
    finally:
        results = injector.revert_all()  # the dark carriers' faults went with their processes: nothing fails
    assert {r["status"] for r in results} == {"succeeded"}, results
    assert faults_on(runtime, "auth-east") == [] and runtime.powered()["dc-west"]


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
    env = {
        **os.environ,
        "BLACKOUT_SERVICE": "auth",
        "BLACKOUT_INSTANCE": "auth-solo",
        "BLACKOUT_DC": "dc-a",
        "BLACKOUT_PORT": str(port),
        "BLACKOUT_LISTEN_FD": str(sock.fileno()),
        "BLACKOUT_DATA_DIR": str(tmp_path),
        "BLACKOUT_TOKEN_SECRET": "t" * 32,
        "BLACKOUT_ADMIN_SECRET": secret,
        "BLACKOUT_SERVICE_KEY": "k" * 32,
    }
    # The instance is not the controller's child: like a container, it does not die with the controller.
    instance = subprocess.Popen(
        [sys.executable, "-m", "services.common.runner"],
        env=env,
        cwd=PROJECT,
        pass_fds=(sock.fileno(),),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {secret}"}
    topology = {
        "name": "solo",
        "data_centers": {"dc-a": {"instances": {"auth-solo": {"service": "auth", "port": port}}}},
    }
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
        controller = subprocess.Popen(
            [sys.executable, "-c", CONTROLLER.format(topology=topology, secret=secret)],
            cwd=PROJECT,
            stdout=subprocess.PIPE,
            text=True,
        )
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
