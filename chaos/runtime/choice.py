"""Which runtime a stack runs on: a kind to start (`--runtime local|netns|docker|swarm`), a stack already up to
borrow, or a maker of a runtime class of one's own (benchmarks); every one behind chaos.runtime.base.Runtime."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from chaos.journal import Journal
from chaos.runtime.base import Runtime, RuntimeError_
from chaos.runtime.borrowed import lend
from chaos.topology import Topology

RUNTIMES = ("local", "netns", "docker", "swarm")

RuntimeMaker = Callable[[Topology, Path, Path | None, Journal], Runtime]
RuntimeChoice = str | Runtime | RuntimeMaker


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


def build_runtime(
    choice: RuntimeChoice, topology: Topology, run_dir: Path, profile: Path | None, journal: Journal
) -> Runtime:
    """The runtime ``choice`` names, not yet up."""
    if isinstance(choice, Runtime):
        if profile is None:
            raise RuntimeError_("a borrowed stack runs the borrower's profile: give its file")
        return lend(choice, profile, journal)
    if isinstance(choice, str):
        return make_runtime(choice, topology, run_dir, profile, journal)
    return choice(topology, run_dir, profile, journal)
