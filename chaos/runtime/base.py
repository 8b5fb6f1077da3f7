"""One interface for every runtime: bring a topology up and down, cut and restore a data center's power."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from chaos.journal import Journal
from chaos.rundir import profile_copy
from chaos.topology import Topology
from services.common.api import ADMIN_PROFILE
from services.common.errors import BlackoutError
from services.common.policy import Profile

# What a runtime can do to its stack; each action kind names the one it needs (chaos.faults.actions).
POWER = "power"  # cut and restore a data center's power
KILL = "kill"  # SIGKILL one instance and start it again
LINKS = "links"  # link faults, through the services' admin routes
NETWORK = "network"  # link faults between data centers in the kernel: netem, nftables drops (chaos.runtime.netns)


class RuntimeError_(BlackoutError):
    """An instance would not start, or the runtime could not do what it was asked."""


@dataclass(frozen=True)
class PowerEvent:
    dc: str
    action: str  # "off" | "on" | "kill" | "start"
    instances: tuple[str, ...]
    seconds: float  # how long the cut (all processes gone) or the restore (all healthy) took
    healthy: bool = True  # "on"/"start": every instance answered /healthz in time
    detail: str = ""  # why not, when not healthy


class Runtime(ABC):
    """A topology brought to life. ``topology`` holds the real ports once ``up`` returned; ``admin_secret``
    opens every instance's /admin routes (profiles, faults), ``service_key`` their internal routes."""

    name: str
    topology: Topology
    admin_secret: str
    service_key: str  # the stack's service credential: what internal routes demand (services/common/perimeter.py)
    capabilities: frozenset[str] = frozenset({POWER, KILL, LINKS})

    @abstractmethod
    def up(self) -> None: ...

    @abstractmethod
    def down(self) -> None: ...

    @abstractmethod
    def power_off(self, dc: str) -> PowerEvent: ...

    @abstractmethod
    def power_on(self, dc: str, boot_order: list[str] | None = None, stagger_s: float = 0.0) -> PowerEvent:
        """Restore power and wait for health; a data center that stays unhealthy is reported, not raised."""

    @abstractmethod
    def kill_instance(self, name: str) -> PowerEvent:
        """SIGKILL one instance."""

    @abstractmethod
    def start_instance(self, name: str) -> PowerEvent:
        """Start one instance that was killed, and wait for its health."""

    @abstractmethod
    def powered(self) -> dict[str, bool]:
        """data center -> has power."""

    @abstractmethod
    def switch_profile(self, profile: Profile) -> dict[str, str]:
        """Swap the resilience profile of every running instance live: instance -> outcome."""

    @abstractmethod
    def status(self) -> dict[str, dict[str, Any]]:
        """instance -> {"dc", "service", "port", "state": "running" | "powered-off" | "exited", "pid"}."""

    def __enter__(self) -> Runtime:
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()


def keep_profile_copy(run_dir: Path, profile: Profile) -> Path:
    path = profile_copy(run_dir, profile.name)
    path.write_text(yaml.safe_dump(profile.model_dump(mode="json"), sort_keys=False))
    return path


def push_profile(urls: dict[str, str], secret: str, profile: Profile) -> dict[str, str]:
    """PUT the profile to each instance's admin route; instance -> "ok" or the reason it failed."""
    results = {}
    with httpx.Client(timeout=5.0, headers={"Authorization": f"Bearer {secret}"}) as client:
        for name, url in urls.items():
            try:
                answer = client.put(url + ADMIN_PROFILE, json=profile.model_dump(mode="json"))
                results[name] = "ok" if answer.status_code == 200 else f"HTTP {answer.status_code}: {answer.text[:200]}"
            except httpx.HTTPError as exc:
                results[name] = f"no answer ({type(exc).__name__})"
    return results


# (topology, run directory, profile file, journal) -> the runtime a run drives (chaos.engine.run.RunOptions)
RuntimeFactory = Callable[[Topology, Path, Path, Journal], Runtime]
