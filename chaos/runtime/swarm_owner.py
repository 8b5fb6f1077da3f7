"""Who owns which stack on the Swarm lab, and the cleanup after a controller that died without `down`.

The record is kept by the Swarm itself: every service of a stack carries its owner (host:pid and start time, the
labels of chaos.runtime.docker_engine). Two cleaners read it. A watcher (chaos.runtime.watcher; ``python -m
chaos.runtime.swarm_owner PREFIX STACK PID STARTED DC...``), started by `up` before the deploy, waits for the
controller: when it dies without tearing down (a SIGKILL), the watcher removes its stack and its containers, and
reconnects every node unless another live run holds the lab. ``sweep``, at the next `up`, does the same for stacks
whose controller and watcher both died. A stack whose owner lives is never touched.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from chaos.runtime import watcher
from chaos.runtime.base import RuntimeError_
from chaos.runtime.docker_engine import OWNER_LABEL, _orphaned

MANAGER = "ctl"
NODE_LINK = "lan0"  # each node's link to the lab's switch
COMMAND_TIMEOUT_S = 120.0
STACK_LABEL = "com.docker.stack.namespace"  # set by `docker stack deploy` on every service and task's container


def docker(prefix: str, node: str, *args: str, check: bool = True) -> str:
    """``docker`` against one engine of the lab (its socket: no network in between, a cut link included)."""
    done = subprocess.run(
        [shutil.which("docker") or "docker", "--host", f"unix:///run/{prefix}/{node}.sock", *args],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    if check and done.returncode != 0:
        raise RuntimeError_(f"docker {' '.join(args[:2])} on {node}: {done.stderr.strip()[:500]}")
    return done.stdout.strip()


def set_link(prefix: str, dc: str, up: bool) -> None:
    """The data center's node connected (``up``) or cut off from the lab's switch."""
    subprocess.run(
        ["ip", "-n", f"{prefix}-{dc}", "link", "set", NODE_LINK, "up" if up else "down"],
        check=True,
        capture_output=True,
        timeout=COMMAND_TIMEOUT_S,
    )


def stacks(prefix: str) -> dict[str, bool]:
    """Every Blackout stack on the lab -> whether its owner is gone."""
    names = docker(prefix, MANAGER, "service", "ls", "--filter", f"label={OWNER_LABEL}", "--format", "{{.Name}}")
    found: dict[str, bool] = {}
    for name in names.split():
        labels = docker(prefix, MANAGER, "service", "inspect", "--format", "{{json .Spec.Labels}}", name, check=False)
        parsed: dict[str, str] = json.loads(labels) if labels else {}
        if stack := parsed.get(STACK_LABEL):
            found[stack] = _orphaned(parsed)
    return found


def remove_stack(prefix: str, stack: str, dcs: list[str]) -> None:
    """The stack's services, then its containers on every node (`stack rm` returns before they are gone)."""
    docker(prefix, MANAGER, "stack", "rm", stack, check=False)
    for dc in dcs:
        found = docker(prefix, dc, "ps", "-aq", "--filter", f"label={STACK_LABEL}={stack}", check=False).split()
        if found:
            docker(prefix, dc, "rm", "--force", *found, check=False)


def sweep(prefix: str, dcs: list[str]) -> list[str]:
    """Remove the stacks of runs whose controller died without `down` and reconnect every node; a live run's
    stack is refused (two stacks would listen on the same addresses and ports). The stacks removed."""
    found = stacks(prefix)
    live = [stack for stack, orphaned in found.items() if not orphaned]
    if live:
        raise RuntimeError_(f"the swarm lab already runs stack {', '.join(live)} of a live run: stop that run first")
    for stack in found:
        remove_stack(prefix, stack, dcs)
    for dc in dcs:
        set_link(prefix, dc, up=True)  # a killed run may have left a data center dark
    return sorted(found)


def watch(prefix: str, stack: str, pid: int, started: float, dcs: list[str]) -> int:
    """Wait for the controller ``pid``; then remove its stack and, unless another live run holds the lab (it
    decides the nodes' links now), reconnect every node."""
    watcher.wait_for_death(pid, started)
    found = stacks(prefix)
    remove_stack(prefix, stack, dcs)
    live = [other for other, orphaned in found.items() if not orphaned and other != stack]
    if not live:
        for dc in dcs:
            set_link(prefix, dc, up=True)
    reconnected = "not reconnected: live run " + ", ".join(live) if live else "reconnected"
    print(f"controller {pid} died without tearing down; stack {stack} removed, nodes {reconnected}", flush=True)
    return 0


if __name__ == "__main__":
    prefix, stack, pid, started, *dcs = sys.argv[1:]
    sys.exit(watch(prefix, stack, int(pid), float(started), dcs))
