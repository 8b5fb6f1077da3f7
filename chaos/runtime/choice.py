"""`--runtime local|netns|docker|swarm`: which runtime a run or a stack uses (all behind chaos.runtime.base.Runtime)."""

from __future__ import annotations

from pathlib import Path

from chaos.journal import Journal
from chaos.runtime.base import Runtime, RuntimeFactory
from chaos.topology import Topology

RUNTIMES = ("local", "netns", "docker", "swarm")


def make_runtime(kind: str, topology: Topology, run_dir: Path, profile: Path | None, journal: Journal) -> Runtime:
    if kind == "docker":
        from chaos.runtime.docker import DockerRuntime  # the Docker SDK only when asked for

        return DockerRuntime(topology, run_dir, profile=profile, journal=journal)
    if kind == "swarm":
        from chaos.runtime.swarm import SwarmRuntime  # a swarm lab (docker/swarm-lab.sh) only when asked for

        return SwarmRuntime(topology, run_dir, profile=profile, journal=journal)
    if kind == "netns":
        from chaos.runtime.netns import NetnsRuntime  # Linux and root only

        return NetnsRuntime(topology, run_dir, profile=profile, journal=journal)
    from chaos.runtime.local import LocalRuntime

    return LocalRuntime(topology, run_dir, profile=profile, journal=journal)


def runtime_factory(kind: str) -> RuntimeFactory:
    """A RunOptions.runtime_factory for ``kind``."""
    return lambda topology, run_dir, profile, journal: make_runtime(kind, topology, run_dir, profile, journal)
