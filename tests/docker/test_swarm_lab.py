"""docker/swarm-lab.sh for real: three engines in namespaces of their own join one Swarm, the workers labelled
with their data center; a stack placed by label lands on the right node; a data center's power cut (its
containers killed, its link down) is seen by Swarm as a node going down; `down` leaves nothing behind.

Needs root, dockerd (the docker lab) and iproute2; skipped loudly without them. Each test uses a prefix of its
own, so it never touches another lab (nor the host's engine beyond reading an image from it)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "docker" / "swarm-lab.sh"
IMAGE = "local/debian:bookworm"  # the docker lab's smallest image: placement needs no Blackout code
DOCKER = shutil.which("docker") or "docker"


def why_not() -> str:
    if os.geteuid() != 0:
        return "not root"
    for tool in ("dockerd", "docker", "ip", "nsenter", "unshare"):
        if shutil.which(tool) is None:
            return f"no {tool}"
    done = subprocess.run([DOCKER, "image", "inspect", IMAGE], capture_output=True, timeout=30)
    if done.returncode != 0:
        return f"no image {IMAGE} on the host's engine (run the docker lab's setup.sh)"
    return ""


WHY_NOT = why_not()
pytestmark = pytest.mark.skipif(bool(WHY_NOT), reason=f"SWARM LAB NOT TESTED: {WHY_NOT}")


class Lab:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.env = {**os.environ, "SWARM_LAB_PREFIX": prefix, "SWARM_LAB_IMAGES": IMAGE}

    def script(self, command: str) -> str:
        done = subprocess.run(["bash", str(SCRIPT), command], env=self.env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, f"swarm-lab.sh {command} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def docker(self, node: str, *args: str) -> str:
        done = subprocess.run(
            [DOCKER, "--host", f"unix:///run/{self.prefix}/{node}.sock", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"docker {' '.join(args)} on {node}: {done.stderr}"
        return done.stdout.strip()

    def node_states(self) -> dict[str, tuple[str, str, str]]:
        """node name -> (status, availability, label dc)."""
        lines = self.docker("ctl", "node", "ls", "-q").split()
        found = {}
        for node_id in lines:
            name, state, availability, dc = self.docker(
                "ctl",
                "node",
                "inspect",
                node_id,
                "--format",
                '{{.Description.Hostname}}|{{.Status.State}}|{{.Spec.Availability}}|{{index .Spec.Labels "dc"}}',
            ).split("|")
            found[name] = (state, availability, dc)
        return found

    def leftovers(self) -> list[str]:
        """Whatever of this lab is still on the machine."""
        found = [
            f"netns {n}"
            for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
            if n.startswith(self.prefix)
        ]
        found += [f"dir {d}" for d in (Path(f"/run/{self.prefix}"), Path(f"/var/lib/{self.prefix}")) if d.exists()]
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit() and int(proc.name) != os.getpid():
                try:
                    cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                if f"/run/{self.prefix}/" in cmdline:
                    found.append(f"process {proc.name}: {cmdline[:120]}")
        found += [f"cgroup {c}" for c in Path("/sys/fs/cgroup").glob(f"*/{self.prefix}-*")]
        found += [f"mount {line}" for line in Path("/proc/self/mounts").read_text().splitlines() if self.prefix in line]
        return found


@pytest.fixture
def lab() -> Iterator[Lab]:
    lab = Lab(f"bks{secrets.token_hex(3)}")
    try:
        yield lab
    finally:
        lab.script("down")
    assert lab.leftovers() == []


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout_s, f"not within {timeout_s:g}s: {what}"
        time.sleep(0.2)
    return time.monotonic() - started


def test_three_engines_join_one_swarm_labelled_by_data_center_and_up_is_idempotent(lab):
    assert "swarm lab up" in lab.script("up")
    nodes = lab.node_states()
    assert nodes == {
        f"{lab.prefix}-ctl": ("ready", "drain", ""),
        f"{lab.prefix}-dc-east": ("ready", "active", "dc-east"),
        f"{lab.prefix}-dc-west": ("ready", "active", "dc-west"),
    }
    pids = {n: Path(f"/run/{lab.prefix}/{n}/dockerd.pid").read_text() for n in ("ctl", "dc-east", "dc-west")}
    lab.script("up")  # again: the same engines, the same swarm
    assert {n: Path(f"/run/{lab.prefix}/{n}/dockerd.pid").read_text() for n in pids} == pids
    assert lab.node_states() == nodes
    # each engine is in a network namespace of its own: the workers' addresses are not the host's
    assert lab.docker("dc-east", "info", "--format", "{{.Swarm.NodeAddr}}") == "10.232.0.2"


STACK = """\
version: "3.8"
services:
{services}
networks:
  hostnet: {{external: true, name: host}}
"""
SERVICE = """\
  probe-{dc}:
    image: {image}
    command: ["sleep", "infinity"]
    networks: [hostnet]
    deploy:
      placement: {{constraints: ["node.labels.dc == {dc}"]}}
      restart_policy: {{condition: none}}
"""


def test_placement_by_label_and_a_power_cut_swarm_sees(lab, tmp_path):
    lab.script("up")
    stack = tmp_path / "stack.yml"
    stack.write_text(
        STACK.format(services="".join(SERVICE.format(dc=dc, image=IMAGE) for dc in ("dc-east", "dc-west")))
    )
    lab.docker("ctl", "stack", "deploy", "-c", str(stack), "probe")

    def tasks() -> dict[str, tuple[str, str]]:
        lines = lab.docker("ctl", "stack", "ps", "probe", "--format", "{{.Name}} {{.Node}} {{.CurrentState}}")
        return {line.split()[0]: (line.split()[1], line.split()[2]) for line in lines.splitlines()}

    wait_for(lambda: all(state == "Running" for _, state in tasks().values()) and len(tasks()) == 2, "tasks running")
    assert {name: node for name, (node, _) in tasks().items()} == {
        "probe_probe-dc-east.1": f"{lab.prefix}-dc-east",
        "probe_probe-dc-west.1": f"{lab.prefix}-dc-west",
    }
    # dc-east loses power: its containers killed, its machine's link cut
    started = time.monotonic()
    running = lab.docker("dc-east", "ps", "-q").split()
    assert running
    lab.docker("dc-east", "kill", "-s", "KILL", *running)
    subprocess.run(["ip", "-n", f"{lab.prefix}-dc-east", "link", "set", "lan0", "down"], check=True)
    assert lab.docker("dc-east", "ps", "-q") == ""
    wait_for(lambda: lab.node_states()[f"{lab.prefix}-dc-east"][0] == "down", "the manager marks dc-east down")
    seen_s = time.monotonic() - started
    assert lab.node_states()[f"{lab.prefix}-dc-west"][0] == "ready"
    assert tasks()["probe_probe-dc-west.1"][1] == "Running"
    print(f"swarm saw dc-east down {seen_s:.1f}s after the cut")
    # `up` restores the link: the node comes back
    lab.script("up")
    wait_for(lambda: lab.node_states()[f"{lab.prefix}-dc-east"][0] == "ready", "dc-east ready again")
