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


def runtime_class(kind: str) -> type[Runtime]:
    """The class of ``--runtime kind`` (imported only when asked for: Docker's SDK, Linux-only modules)."""
    if kind == "docker":
        from chaos.runtime.docker import DockerRuntime

        return DockerRuntime
    if kind == "swarm":
        from chaos.runtime.swarm import SwarmRuntime  # a swarm lab (docker/swarm-lab.sh)

        return SwarmRuntime
    if kind == "netns":
        from chaos.runtime.netns import NetnsRuntime  # Linux and root only

        return NetnsRuntime
    from chaos.runtime.local import LocalRuntime

    return LocalRuntime


def make_runtime(kind: str, topology: Topology, run_dir: Path, profile: Path | None, journal: Journal) -> Runtime:
    make: Callable[..., Runtime] = runtime_class(kind)  # every class takes these (the ABC declares no __init__)
    return make(topology, run_dir, profile=profile, journal=journal)


def capabilities_of(choice: RuntimeChoice) -> tuple[str, frozenset[str]] | None:
    """The runtime's name and what it can do, known before it starts; None for a maker (known once built)."""
    if isinstance(choice, Runtime):
        return choice.name, choice.capabilities
    if isinstance(choice, str):
        cls = runtime_class(choice)
        return cls.name, cls.capabilities
    return None


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
