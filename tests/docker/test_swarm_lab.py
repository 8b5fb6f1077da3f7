"""docker/swarm-lab.sh for real: three engines in namespaces of their own join one Swarm, the workers labelled
with their data center; a stack placed by label lands on the right node; a data center's power cut (its
containers killed, its link down) is seen by Swarm as a node going down; `down` leaves nothing behind.

Needs root, dockerd (the docker lab) and iproute2; skipped loudly without them. Each test uses a prefix of its
own, so it never touches another lab (nor the host's engine beyond reading an image from it)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.swarm_lab import IMAGE, Lab, running_lab, wait_for, why_not

WHY_NOT = why_not()
pytestmark = pytest.mark.skipif(bool(WHY_NOT), reason=f"SWARM LAB NOT TESTED: {WHY_NOT}")


@pytest.fixture
def lab() -> Iterator[Lab]:
    with running_lab() as lab:
        yield lab


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
    assert lab.docker("dc-east", "ps", "-q")
    lab.cut("dc-east")
    assert lab.docker("dc-east", "ps", "-q") == ""
    wait_for(lambda: lab.node_states()[f"{lab.prefix}-dc-east"][0] == "down", "the manager marks dc-east down")
    seen_s = time.monotonic() - started
    assert lab.node_states()[f"{lab.prefix}-dc-west"][0] == "ready"
    assert tasks()["probe_probe-dc-west.1"][1] == "Running"
    print(f"swarm saw dc-east down {seen_s:.1f}s after the cut")
    # `up` restores the link: the node comes back
    lab.script("up")
    wait_for(lambda: lab.node_states()[f"{lab.prefix}-dc-east"][0] == "ready", "dc-east ready again")
