"""The swarm runtime for real, on a lab of its own: up, a data center's power cut and restore, down; a
controller SIGKILLed mid-outage whose watcher removes its stack and reconnects its dark node; one killed with
its watcher, whose stack and dark link the next `up` sweeps; and `blackout run` interrupted with Ctrl-C while a
data center is dark, which tears down itself. Nothing is left behind (the lab's own check after `down`). The
controller's side runs in the lab's manager namespace, as `make outage RUNTIME=swarm` runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from fakes.docker_lab import build_image
from fakes.processes import wait_all_gone
from fakes.scenarios import short_power_loss
from fakes.swarm_lab import Lab, running_lab, wait_for, why_not

from chaos.journal import read_events
from chaos.rundir import JOURNAL
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
    found += [f"network {n}" for n in lab.docker("ctl", "network", "ls", "-q", "--filter", of_stack).split()]
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


def interrupt_when_dark(lab: Lab, runs: Path, proc: subprocess.Popen[bytes]) -> tuple[str, list[int]]:
    """Wait until the run's stack is on the Swarm and dc-east is dark, then Ctrl-C it as a terminal does (SIGINT
    to its process group) and wait for it to exit: its stack, and the processes it had started then."""
    deadline = time.monotonic() + 300  # under nice, on a shared machine: the deploy, then the users' logins
    stack, dark = "", False
    while not dark:
        assert proc.poll() is None, f"the run exited ({proc.returncode}) before dc-east went dark"
        assert time.monotonic() < deadline, "dc-east never went dark"
        time.sleep(0.2)
        events = [e for path in runs.glob(f"*/{JOURNAL}") for e in read_events(path)]
        stack = next((str(e["stack"]) for e in events if e["event"] == "up" and e.get("runtime") == "swarm"), "")
        off = any(e["event"] == "power-off" and e.get("dc") == "dc-east" for e in events)
        services = lab.docker("ctl", "service", "ls", "-q", "--filter", f"label={STACK}={stack}") if stack else ""
        dark = off and bool(services) and not netlink.link_is_up(f"{lab.prefix}-dc-east", "lan0")
    started = [child.pid for child in psutil.Process(proc.pid).children(recursive=True)]  # the watcher, locust...
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=180)
    return stack, started


def test_ctrl_c_on_a_run_while_a_data_center_is_dark_leaves_nothing_behind(image, tmp_path: Path):
    """`blackout run --runtime swarm` (on the manager, as `make outage RUNTIME=swarm` runs it) interrupted while
    dc-east is dark: the run itself removes its stack and reconnects the dark node, not its watcher afterwards."""
    scenario = short_power_loss(tmp_path / "scenarios", off_at=1, on_at=200, duration=220, users=2)
    runs, errors = tmp_path / "runs", tmp_path / "stderr.txt"
    with running_lab(BLACKOUT_IMAGE) as lab:
        lab.script("up")
        with errors.open("wb") as stderr:
            proc = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{lab.prefix}-ctl", sys.executable, "-m", "chaos.cli", "run"]
                + [str(scenario), "--runtime", "swarm", "--runs", str(runs)],
                cwd=PROJECT_ROOT,
                env={**os.environ, "SWARM_LAB_PREFIX": lab.prefix},
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,  # a group of its own, as a shell's job: the Ctrl-C reaches no one else
            )
            try:
                stack, started = interrupt_when_dark(lab, runs, proc)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        assert proc.returncode == 130, errors.read_text()[-3000:]
        assert leftovers(lab, stack) == []  # at once: the run tore down, not its watcher after it
        run_dir = next(runs.glob(f"*/{JOURNAL}")).parent
        assert any(e["event"] == "down" and e.get("stack") == stack for e in read_events(run_dir / JOURNAL))
        assert "died without tearing down" not in (run_dir / "logs" / "swarm-watcher.log").read_text()
        assert not wait_all_gone(started, 10), "a process of the run outlived it"
        wait_for(lambda: lab.node_states()[f"{lab.prefix}-dc-east"][0] == "ready", "dc-east's node Ready again", 90)
