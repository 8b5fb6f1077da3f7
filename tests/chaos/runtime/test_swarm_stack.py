"""The Swarm stack of a topology: every instance placed by label on its data center's node, listening on that
node's address; deployed for real on docker/swarm-lab.sh, where a data center's power cut takes down what
depends on it across the link and nothing else."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fakes.docker_lab import build_image
from fakes.swarm_lab import running_lab, wait_for, why_not

from chaos.runtime import netlink
from chaos.runtime.compose import PROJECT_ROOT
from chaos.runtime.swarm_stack import stack_document
from chaos.topology import Topology, load_topology
from services.common.accounts import account
from services.common.seed import DEMO_PASSWORD

BLACKOUT_IMAGE = "blackout:latest"
ADDRESSES = {"dc-east": "10.232.0.2", "dc-west": "10.232.0.3"}


def credentials() -> dict[str, str]:
    return {
        k: secrets.token_urlsafe(16) for k in ("BLACKOUT_TOKEN_SECRET", "BLACKOUT_ADMIN_SECRET", "BLACKOUT_SERVICE_KEY")
    }


def fragile(addresses: dict[str, str]) -> Topology:
    return load_topology(PROJECT_ROOT / "topologies" / "fragile.yaml").with_addresses(addresses)


def test_every_instance_is_placed_on_its_data_centers_node_and_calls_the_others_at_their_address(tmp_path):
    topology = fragile(ADDRESSES)
    stack = stack_document(topology, BLACKOUT_IMAGE, tmp_path, credentials(), "0:0")
    assert set(stack["services"]) == set(topology.instances())
    for name, (dc, _) in topology.instances().items():
        spec = stack["services"][name]
        assert spec["deploy"]["placement"]["constraints"] == [f"node.labels.dc == {dc}"]
        assert spec["deploy"]["restart_policy"] == {"condition": "none"}  # a dark data center stays dark
        assert spec["networks"] == ["hostnet"] and spec["environment"]["BLACKOUT_HOST"] == ADDRESSES[dc]
    gateway_west = stack["services"]["gateway-west"]["environment"]
    assert '"auth":["http://10.232.0.2:8001"]' in gateway_west["BLACKOUT_DEPENDENCIES"]  # across to dc-east
    assert "BLACKOUT_TOKEN_SECRET" not in stack["services"]["views-east"]["environment"]


WHY_NOT = why_not(BLACKOUT_IMAGE)


@pytest.mark.skipif(bool(WHY_NOT), reason=f"SWARM STACK NOT TESTED: {WHY_NOT}")
def test_the_stack_runs_on_the_swarm_and_a_power_cut_cascades_across_the_link(tmp_path: Path):
    build_image()  # this tree's code, as the Docker runtime's tests do
    with running_lab(BLACKOUT_IMAGE) as lab:
        lab.script("up")
        addresses = {dc: lab.docker(dc, "info", "--format", "{{.Swarm.NodeAddr}}") for dc in ADDRESSES}
        topology = fragile(addresses)
        run_dir = tmp_path / "run"
        (run_dir / "data").mkdir(parents=True)
        stack_file = tmp_path / "stack.yml"
        stack_file.write_text(yaml.safe_dump(stack_document(topology, BLACKOUT_IMAGE, run_dir, credentials(), "0:0")))
        lab.docker("ctl", "stack", "deploy", "-c", str(stack_file), "blackout")

        def in_lab(work: Callable[[], Any]) -> Any:
            """Run ``work`` with sockets in the manager's namespace: it reaches every node's address."""
            return netlink.in_namespace(f"{lab.prefix}-ctl", work)

        def healthy() -> bool:
            def probe() -> bool:
                with httpx.Client(timeout=1.0) as client:
                    try:
                        return all(
                            client.get(topology.url(n) + "/healthz").status_code == 200 for n in topology.instances()
                        )
                    except httpx.HTTPError:
                        return False

            return in_lab(probe)

        wait_for(healthy, "every instance answers /healthz", timeout_s=180)
        nodes = lab.docker("ctl", "stack", "ps", "blackout", "--format", "{{.Name}} {{.Node}}").splitlines()
        for line in nodes:
            task, node = line.split()
            instance = task.removeprefix("blackout_").rsplit(".", 1)[0]
            assert node == f"{lab.prefix}-{topology.dc_of(instance)}"

        def login_via_west() -> int:
            def post() -> int:
                with httpx.Client(timeout=15.0) as client:
                    body = {"username": account(0)[0], "password": DEMO_PASSWORD}
                    try:
                        return client.post(topology.url("gateway-west") + "/login", json=body).status_code
                    except httpx.HTTPError:
                        return 0

            return in_lab(post)

        assert login_via_west() == 200  # gateway-west (dc-west's node) -> auth-east (dc-east's node)
        lab.cut("dc-east")
        assert login_via_west() != 200  # auth lived only in dc-east
        assert in_lab(lambda: httpx.get(topology.url("gateway-west") + "/healthz", timeout=5.0).status_code) == 200
