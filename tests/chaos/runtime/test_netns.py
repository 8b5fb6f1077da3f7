"""The netns runtime for real: namespaces, veths, a bridge, qdiscs and nftables rules made, faulted and removed.

Needs root and iproute2/nftables; skipped (loudly) without them. Every test checks that nothing of its stack is
left behind: namespaces, the host's link, the owner record.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml
from fakes.processes import alive, wait_all_gone

from chaos.faults.actions import parse_action
from chaos.faults.injector import FaultInjector
from chaos.journal import Journal
from chaos.rundir import STATE_FILE
from chaos.runtime import netlink, netns_owner
from chaos.runtime.netns import DC_LINK, NetnsRuntime
from chaos.topology import load_topology
from services.common.policy import load_profile
from services.common.seed import DEMO_PASSWORD

PROJECT = Path(__file__).resolve().parents[3]
WHY_NOT = netlink.why_unsupported()
pytestmark = pytest.mark.skipif(bool(WHY_NOT), reason=f"NETNS RUNTIME NOT TESTED: {WHY_NOT}")
GONE_WITHIN_S = 15.0


def leftovers(prefix: str) -> list[str]:
    """What of the stack ``prefix`` still exists: namespaces, host links, its owner record."""
    found = [f"netns {n}" for n in netlink.namespaces() if n.startswith(prefix)]
    found += [f"link {n}" for n in netlink.host_links() if n.startswith(prefix)]
    found += [f"record {p}" for p in netns_owner.RECORDS_DIR.glob(f"{prefix}*.json")]
    return found


def wait_no_leftovers(prefix: str) -> list[str]:
    deadline = time.monotonic() + GONE_WITHIN_S
    while (left := leftovers(prefix)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def instance_pids(run_dir: Path) -> list[int]:
    state = json.loads((run_dir / STATE_FILE).read_text())
    return [info["pid"] for info in state["instances"].values() if info["pid"]]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    topology = load_topology(PROJECT / "topologies" / "fragile.yaml")
    runtime = NetnsRuntime(topology, tmp_path_factory.mktemp("run"), profile=PROJECT / "profiles" / "naive.yaml")
    with runtime:
        yield runtime
        pids = instance_pids(runtime.run_dir)
    assert not wait_all_gone(pids, 10), "an instance outlived `down`"
    assert not wait_no_leftovers(runtime.prefix), "`down` left part of the network behind"


def test_each_data_center_is_a_namespace_of_its_own(stack):
    addresses = {dc: stack.topology.address(dc) for dc in stack.topology.data_centers}
    assert len(set(addresses.values())) == 2 and "127.0.0.1" not in addresses.values()
    for name, info in stack.status().items():
        namespace = netlink.netns_path(stack.namespaces[info["dc"]])
        assert os.stat(f"/proc/{info['pid']}/ns/net").st_ino == os.stat(namespace).st_ino, name
        assert httpx.get(stack.topology.url(name) + "/healthz", timeout=5).status_code == 200
    # gateway-west's dependencies are resolved to dc-east's address: a login crosses the link
    login = httpx.post(
        stack.topology.url("gateway-west") + "/login",
        json={"username": "viewer-0003", "password": DEMO_PASSWORD},
        timeout=10,
    )
    assert login.status_code == 200, login.text


def test_power_off_drops_packets_so_callers_hang(stack):
    """A dead host: an established keep-alive connection stalls mid-request, a new one's SYN is never answered;
    nothing is refused. Power returns with the link up and every instance healthy."""
    url = stack.topology.url("auth-east") + "/healthz"
    with httpx.Client(timeout=httpx.Timeout(1.0)) as client:
        assert client.get(url).status_code == 200  # the connection the next request reuses
        pids = [info["pid"] for info in stack.status().values() if info["dc"] == "dc-east"]
        stack.power_off("dc-east")
        assert not stack.link_up("dc-east")
        assert not alive(pids)
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            client.get(url)
        assert time.monotonic() - started >= 0.9
    with pytest.raises(httpx.ConnectTimeout):
        httpx.get(url, timeout=1.0)
    assert stack.status()["auth-east"]["state"] == "powered-off"
    back = stack.power_on("dc-east")
    assert back.healthy, back.detail
    assert stack.link_up("dc-east")
    assert httpx.get(url, timeout=5).status_code == 200


def test_impair_delays_only_what_goes_to_the_other_data_center(stack):
    west = stack.namespaces["dc-west"]
    stack.impair("slow", "dc-west", "dc-east", ["delay", "400ms"])
    try:
        assert "netem" in netlink.qdiscs(west, DC_LINK)
        started = time.monotonic()
        answer = httpx.post(
            stack.topology.url("gateway-west") + "/login",
            json={"username": "viewer-0004", "password": DEMO_PASSWORD},
            timeout=10,
        )
        crossing = time.monotonic() - started
        started = time.monotonic()
        assert httpx.get(stack.topology.url("gateway-west") + "/healthz", timeout=5).status_code == 200
        local = time.monotonic() - started
    finally:
        stack.repair("slow")
    assert answer.status_code == 200, answer.text
    assert crossing >= 0.4  # the answer from auth-east came back through the delay
    assert local < 0.4  # the users' edge is not behind it
    assert "netem" not in netlink.qdiscs(west, DC_LINK)


CHILD = """
import json, sys, time
from pathlib import Path
from chaos.runtime.netns import NetnsRuntime
from chaos.topology import load_topology
runtime = NetnsRuntime(load_topology(Path(sys.argv[1])), Path(sys.argv[2]))
runtime.up()
runtime.impair("slow", "dc-west", "dc-east", ["delay", "50ms", "loss", "1%"])
runtime.block("split", "dc-west", "dc-east", both_ways=True)
print(json.dumps({"prefix": runtime.prefix, "watcher": runtime._watcher.pid, "namespaces": runtime.namespaces}),
      flush=True)
time.sleep(600)
"""


def start_controller(tmp_path: Path) -> tuple[subprocess.Popen, dict]:
    """A controller process with a stack up, a netem qdisc and a partition in place."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(PROJECT / "topologies" / "fragile.yaml"), str(tmp_path)],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        text=True,
    )
    timer = threading.Timer(90, proc.kill)  # a controller that never reports is not waited on forever
    timer.start()
    try:
        line = proc.stdout.readline() if proc.stdout else ""
    finally:
        timer.cancel()
    assert line, f"the controller did not come up (exit {proc.poll()})"
    info = json.loads(line)
    west = info["namespaces"]["dc-west"]
    assert "netem" in netlink.qdiscs(west, DC_LINK)
    assert "drop" in netlink.run("ip", "netns", "exec", west, "nft", "list", "ruleset")
    return proc, info


def test_a_sigkilled_controller_leaves_no_namespace_link_or_qdisc(tmp_path):
    proc, info = start_controller(tmp_path)
    pids = instance_pids(tmp_path)
    try:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        left = wait_no_leftovers(info["prefix"])
    finally:
        if proc.poll() is None:
            proc.kill()
        netns_owner.sweep()
    assert not left, f"left behind after the controller's SIGKILL: {left}"
    assert not wait_all_gone(pids, 10)
    # the qdisc and the drops lived in the data center's namespace: gone with it (and nothing in the host's)
    assert info["prefix"] not in netlink.run("tc", "qdisc", "show")


def test_the_next_start_sweeps_what_a_dead_controller_and_its_watcher_left(tmp_path):
    proc, info = start_controller(tmp_path)
    try:
        os.kill(info["watcher"], signal.SIGKILL)  # no one left to clean up at once
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert leftovers(info["prefix"]), "something to sweep"
        removed = netns_owner.sweep()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert any(info["prefix"] in r for r in removed)
    assert not wait_no_leftovers(info["prefix"])


def test_sweep_never_touches_a_namespace_it_did_not_create():
    stranger = f"bo{os.getpid():x}-not-ours"
    netlink.add_namespace(stranger)
    try:
        netns_owner.sweep()
        assert stranger in netlink.namespaces()
    finally:
        netlink.delete_namespace(stranger)


def failover_topology(path: Path) -> Path:
    """dc-west's gateway calls auth in dc-east first, its own auth second: a partition tells whether the caller
    waits out dc-east (naive) or fails over to dc-west (resilient)."""
    data = {
        "name": "crossed",
        "data_centers": {
            "dc-east": {"instances": {"auth-east": {"service": "auth", "port": 8001}}},
            "dc-west": {
                "instances": {
                    "gateway-west": {
                        "service": "gateway",
                        "port": 9000,
                        "depends_on": {
                            "auth": ["auth-east", "auth-west"],
                            "views": ["views-west"],
                            "recommender": ["recommender-west"],
                            "earnings": ["earnings-west"],
                        },
                    },
                    "auth-west": {"service": "auth", "port": 9001},
                    "views-west": {"service": "views", "port": 9002},
                    "earnings-west": {
                        "service": "earnings",
                        "port": 9003,
                        "depends_on": {"views": ["views-west"], "recommender": ["recommender-west"]},
                    },
                    "recommender-west": {
                        "service": "recommender",
                        "port": 9004,
                        "depends_on": {"views": ["views-west"]},
                    },
                }
            },
        },
    }
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_network_partition_hangs_a_naive_caller_and_a_resilient_one_fails_over(tmp_path):
    """No in-app fault at all (the services' fault registries stay empty): the drops are in the kernel."""
    topology = load_topology(failover_topology(tmp_path / "crossed.yaml"))
    naive = load_profile(PROJECT / "profiles" / "naive.yaml")
    resilient = load_profile(PROJECT / "profiles" / "resilient.yaml")
    runtime = NetnsRuntime(topology, tmp_path / "run", profile=PROJECT / "profiles" / "naive.yaml")
    gateway = ""

    def login(user: str) -> tuple[int, float]:
        started = time.monotonic()
        answer = httpx.post(gateway + "/login", json={"username": user, "password": DEMO_PASSWORD}, timeout=30)
        return answer.status_code, time.monotonic() - started

    with runtime:
        gateway = runtime.topology.url("gateway-west")
        assert login("viewer-0005")[0] == 200  # across the link while it is whole
        runtime.block("split", "dc-west", "dc-east", both_ways=True)
        naive_status, naive_s = login("viewer-0006")
        assert runtime.switch_profile(resilient) == {name: "ok" for name in runtime.topology.instances()}
        resilient_status, resilient_s = login("viewer-0007")
        faults = httpx.get(
            gateway + "/admin/faults", headers={"Authorization": f"Bearer {runtime.admin_secret}"}, timeout=5
        ).json()
        runtime.unblock("split")
        prefix = runtime.prefix
    timeout_s = naive.for_dependency("auth").timeout_s
    assert naive_status != 200 and naive_s >= timeout_s, (naive_status, naive_s)
    assert resilient_status == 200 and resilient_s < timeout_s, (resilient_status, resilient_s)
    assert faults == [], faults
    assert not wait_no_leftovers(prefix)


def test_the_scenarios_link_faults_go_to_the_kernel_and_come_back_out(stack):
    """A scenario's latency and partition between data centers, through the same injector and rollbacks as on
    every runtime: here as netem and nftables on the links, never as in-app faults."""
    injector = FaultInjector(stack, Journal(stack.run_dir), random.Random(5))
    west, east = stack.namespaces["dc-west"], stack.namespaces["dc-east"]
    admin = {"Authorization": f"Bearer {stack.admin_secret}"}
    try:
        slow, output = injector.apply(
            parse_action({"latency": {"from": "dc-west", "to": "dc-east", "ms": 300, "jitter_ms": 50}}, "test", "t")
        )
        assert output["layer"] == "network" and "netem" in netlink.qdiscs(west, DC_LINK)
        split, _ = injector.apply(parse_action({"partition": ["dc-east", "dc-west"]}, "test", "t"))
        for namespace in (west, east):
            assert "drop" in netlink.run("ip", "netns", "exec", namespace, "nft", "list", "ruleset")
        assert httpx.get(stack.topology.url("gateway-west") + "/admin/faults", headers=admin, timeout=5).json() == []
        assert slow and split
        injector.revert(split)
        injector.revert(slow)
    finally:
        injector.revert_all()
        injector.close()
    assert "netem" not in netlink.qdiscs(west, DC_LINK)
    for namespace in (west, east):
        assert "drop" not in netlink.run("ip", "netns", "exec", namespace, "nft", "list", "ruleset")
