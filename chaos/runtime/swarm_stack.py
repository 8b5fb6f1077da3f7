"""The stack `docker stack deploy` runs on a Swarm whose nodes are data centers (docker/swarm-lab.sh).

Every instance is a service of one task, placed by the node label ``dc`` on its data center's node, on that
node's own network (the external network ``host``: the node is a machine of its own, with its own address, so
its instances listen on that address and reach their dependencies at the other node's). ``restart_policy: none``:
a data center whose power was cut stays dark until the controller restores it, as with the Docker runtime.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chaos.rundir import DATA_DIR
from chaos.runtime.docker import MEMORY_LIMITS
from chaos.topology import Topology
from services.common.settings import TOKEN_SERVICES, dependencies_env

NODE_LABEL = "dc"  # the label docker/swarm-lab.sh gives each worker: its data center
HOST_NETWORK = "hostnet"  # the stack's name for Docker's predefined "host" network
COMPOSE_VERSION = "3.8"  # the newest file format `docker stack deploy` of Docker 20.10 reads


def placement(dc: str) -> str:
    return f"node.labels.{NODE_LABEL} == {dc}"


def stack_document(
    topology: Topology,
    image: str,
    run_dir: Path,
    credentials: dict[str, str],
    user: str,
    profile: Path | None = None,
    owner: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``topology``: with each data center's node address (Topology.with_addresses). ``credentials``: the
    BLACKOUT_TOKEN_SECRET, BLACKOUT_ADMIN_SECRET and BLACKOUT_SERVICE_KEY of this stack. ``run_dir`` is mounted
    at the same path in every task (the nodes share this machine's filesystem); ``profile``: the file every instance
    reads its resilience profile from (inside ``run_dir``); ``owner``: labels naming the process that deployed it."""
    services: dict[str, Any] = {}
    for name, (dc, inst) in topology.instances().items():
        env = {
            "BLACKOUT_SERVICE": inst.service,
            "BLACKOUT_INSTANCE": name,
            "BLACKOUT_DC": dc,
            "BLACKOUT_HOST": topology.address(dc),
            "BLACKOUT_PORT": str(inst.port),
            "BLACKOUT_DATA_DIR": str(run_dir / DATA_DIR),
            "BLACKOUT_DEPENDENCIES": dependencies_env(topology.dependency_urls(name)),
            **({"BLACKOUT_PROFILE": str(profile)} if profile else {}),
            **{k: v for k, v in credentials.items() if k != "BLACKOUT_TOKEN_SECRET" or inst.service in TOKEN_SERVICES},
        }
        services[name] = {
            "image": image,
            "user": user,  # files in the run directory stay the user's
            "environment": env,
            "networks": [HOST_NETWORK],
            "volumes": [{"type": "bind", "source": str(run_dir), "target": str(run_dir)}],
            "labels": {"blackout.dc": dc, "blackout.instance": name, "blackout.service": inst.service},
            "deploy": {
                "replicas": 1,
                "placement": {"constraints": [placement(dc)]},
                "restart_policy": {"condition": "none"},
                "resources": {"limits": {"memory": MEMORY_LIMITS[inst.service].upper()}},
                "labels": {"blackout.dc": dc, "blackout.instance": name, **(owner or {})},
            },
        }
    return {
        "version": COMPOSE_VERSION,
        "services": services,
        "networks": {HOST_NETWORK: {"external": True, "name": "host"}},
    }
