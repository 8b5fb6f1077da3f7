"""The swarm runtime for real, on a lab of its own: up, a data center's power cut and restore, down; a
controller SIGKILLed mid-outage whose watcher removes its stack and reconnects its dark node; and one killed with
its watcher, whose stack and dark link the next `up` sweeps. Nothing is left behind (the lab's
own check after `down`). The controller's side runs in the lab's manager namespace, as `make outage
RUNTIME=swarm` runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.docker_lab import build_image
from fakes.swarm_lab import Lab, running_lab, wait_for, why_not

from chaos.runtime import netlink
from chaos.runtime.compose import PROJECT_ROOT
from chaos.runtime.swarm import SwarmRuntime
from chaos.runtime.swarm_owner import STACK_LABEL as STACK
from chaos.topology import load_topology

BLACKOUT_IMAGE = "blackout:latest"
WHY_NOT = why_not(BLACKOUT_IMAGE)
pytestmark = pytest.mark.skipif(bool(WHY_NOT), reason=f"SWARM RUNTIME NOT TESTED: {WHY_NOT}")
FRAGILE = PROJECT_ROOT / "topologies" / "fragile.yaml"


def in_lab(lab: Lab, work: Callable[[], Any]) -> Any:
    return netlink.in_namespace(f"{lab.prefix}-ctl", work)


def answers(lab: Lab, url: str) -> bool:
    def probe() -> bool:
        try:
            return httpx.get(url + "/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    return bool(in_lab(lab, probe))


@pytest.fixture(scope="module")
def image() -> None:
    build_image()


def test_up_power_cut_restore_and_down(image, tmp_path: Path):
    with running_lab(BLACKOUT_IMAGE) as lab:
        lab.script("up")
        runtime = SwarmRuntime(load_topology(FRAGILE), tmp_path / "run", prefix=lab.prefix)
        try:
            in_lab(lab, runtime.up)
            east = runtime.topology.url("views-east")
            assert east.startswith("http://10.232.0.2:") and answers(lab, east)
            off = runtime.power_off("dc-east")
            assert off.seconds < 5 and lab.docker("dc-east", "ps", "-q") == ""
            assert not answers(lab, east) and answers(lab, runtime.topology.url("gateway-west"))
            assert runtime.powered() == {"dc-east": False, "dc-west": True}
            on = in_lab(lab, lambda: runtime.power_on("dc-east", boot_order=["views", "auth"]))
            assert on.healthy, on.detail
            assert answers(lab, east) and runtime.powered() == {"dc-east": True, "dc-west": True}
        finally:
            runtime.down()
        assert lab.docker("ctl", "service", "ls", "-q") == "" and lab.docker("dc-east", "ps", "-aq") == ""
        assert (tmp_path / "run" / "logs" / "views-east.log").exists()


KILLED_CONTROLLER = """
import sys
from pathlib import Path
from chaos.runtime.swarm import SwarmRuntime
from chaos.topology import load_topology
runtime = SwarmRuntime(load_topology(sys.argv[1]), Path(sys.argv[2]), prefix=sys.argv[3])
runtime.up()
runtime.power_off("dc-east")
print(runtime.stack, runtime._watcher.pid, flush=True)
sys.stdin.read()  # until SIGKILLed
"""


def start_and_kill_controller(lab: Lab, run_dir: Path, kill_watcher: bool) -> str:
    """A controller up on the lab with dc-east dark, SIGKILLed (its watcher too when ``kill_watcher``): its stack."""
    controller = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{lab.prefix}-ctl", sys.executable, "-c", KILLED_CONTROLLER]
        + [str(FRAGILE), str(run_dir), lab.prefix],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
    )
    try:
        assert controller.stdout is not None
        stack, watcher_pid = (controller.stdout.readline().split() + ["", ""])[:2]
        assert stack, "the controller never came up"
        if kill_watcher:
            os.kill(int(watcher_pid), signal.SIGKILL)
    finally:
        os.kill(controller.pid, signal.SIGKILL)
        controller.wait()
    return stack


def leftovers(lab: Lab, stack: str) -> list[str]:
    """What of ``stack`` is still on the lab: its services, its containers on any node, a node's link cut."""
    of_stack = f"label={STACK}={stack}"
    found = [f"service {s}" for s in lab.docker("ctl", "service", "ls", "-q", "--filter", of_stack).split()]
    for dc in ("dc-east", "dc-west"):
        found += [f"container {c} on {dc}" for c in lab.docker(dc, "ps", "-aq", "--filter", of_stack).split()]
        if not netlink.link_is_up(f"{lab.prefix}-{dc}", "lan0"):
            found.append(f"{dc}'s link down")
    return found


def test_a_sigkilled_controllers_watcher_removes_its_stack_and_reconnects_the_dark_node(image, tmp_path: Path):
    """Nothing left behind after a SIGKILLed controller, with no later `up`: its watcher cleans up."""
    with running_lab(BLACKOUT_IMAGE) as lab:
        lab.script("up")
        stack = start_and_kill_controller(lab, tmp_path / "killed", kill_watcher=False)
        wait_for(lambda: leftovers(lab, stack) == [], f"stack {stack} removed and dc-east reconnected", 90)
        log = (tmp_path / "killed" / "logs" / "swarm-watcher.log").read_text()
        assert f"stack {stack} removed, nodes reconnected" in log


def test_a_stack_whose_controller_and_watcher_were_sigkilled_is_swept_by_the_next_up(image, tmp_path: Path):
    with running_lab(BLACKOUT_IMAGE) as lab:
        lab.script("up")
        killed_stack = start_and_kill_controller(lab, tmp_path / "killed", kill_watcher=True)
        assert lab.docker("ctl", "service", "ls", "-q")  # left behind: no one watched the dead controller
        assert not netlink.link_is_up(f"{lab.prefix}-dc-east", "lan0")
        runtime = SwarmRuntime(load_topology(FRAGILE), tmp_path / "next", prefix=lab.prefix)
        try:
            in_lab(lab, runtime.up)  # the sweep, then its own stack: dc-east's link is back
            journal = runtime.journal.path.read_text()
            swept = [json.loads(line) for line in journal.splitlines() if '"swept"' in line]
            assert swept and swept[0]["stacks"] == [killed_stack]
            services = lab.docker("ctl", "service", "ls", "--format", "{{.Name}}").split()
            assert services and all(s.startswith(runtime.stack + "_") for s in services)
        finally:
            runtime.down()
        wait_for(lambda: lab.docker("dc-east", "ps", "-aq") == "", "the swept stack's containers gone")
