"""One interface for every runtime: bring a topology up and down, cut and restore a data center's power.

``InstanceRuntime`` is what the runtimes that start instances themselves (local processes, containers) share:
restoring power in boot-order waves, starting one instance, waiting for health, switching the profile live.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from chaos.instance_client import ADMIN_S, HEALTH_S, InstanceClient
from chaos.journal import EventName, Journal
from chaos.rundir import profile_copy
from chaos.topology import Topology
from services.common.api import ADMIN_PROFILE
from services.common.errors import BlackoutError
from services.common.policy import Profile

# What a runtime can do to its stack; each action kind names the one it needs (chaos.faults.actions).
POWER = "power"  # cut and restore a data center's power
KILL = "kill"  # SIGKILL one instance and start it again
LINKS = "links"  # link faults, through the services' admin routes
NETWORK = "network"  # link faults between data centers in the kernel: tc, NFQUEUE, nftables (chaos.runtime.netns)


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


class InstanceRuntime(Runtime):
    """A runtime that starts every instance itself. A subclass says how one wave of instances boots (``_boot``),
    whether a data center or an instance has power (``_lit``, ``_running``), what makes a boot fail
    (``_failed_while_starting``) and how it keeps the profile instances start with (``_keep_profile``)."""

    run_dir: Path
    journal: Journal
    health_timeout_s: float
    _lock: threading.RLock
    HEALTH_POLL_S = 0.05

    # -- what a subclass provides ----------------------------------------------------------------------
    @abstractmethod
    def _boot(self, dc: str, names: list[str]) -> None:
        """Start ``names`` in ``dc`` (called under the lock); their data center has power from now on."""

    @abstractmethod
    def _lit(self, dc: str) -> bool:
        """Whether ``dc`` has power (under the lock)."""

    @abstractmethod
    def _running(self, name: str) -> bool:
        """Whether the instance has been started and not killed since (under the lock)."""

    @abstractmethod
    def _failed_while_starting(self, names: list[str]) -> str:
        """Why instances still booting will not come up (lost power, exited), or ""."""

    @abstractmethod
    def _keep_profile(self, profile: Profile) -> None:
        """Keep ``profile`` where instances started from now on read it (under the lock)."""

    def _answering(self, name: str) -> bool:
        """Whether a health check of the instance can be answered yet."""
        return True

    def _facts(self, names: list[str]) -> dict[str, object]:
        """What the runtime adds to the journal's record of ``names`` booting."""
        return {}

    def _logs_hint(self) -> str:
        return f"logs in {self.run_dir / 'logs'}"

    # -- the shared sequence -------------------------------------------------------------------------------
    def power_on(self, dc: str, boot_order: list[str] | None = None, stagger_s: float = 0.0) -> PowerEvent:
        """Start the data center's instances (services in ``boot_order`` first, ``stagger_s`` apart), then wait
        for health outside the lock: a data center that does not come back is a result, not an exception."""
        self.topology.require_dc(dc)
        waves = self.topology.boot_waves(dc, boot_order)
        with self._lock:
            if self._lit(dc):
                raise RuntimeError_(f"{dc} is already powered on")
            started = time.monotonic()
            self._boot(dc, waves[0])
        for wave in waves[1:]:
            time.sleep(stagger_s)  # the stagger itself is the scenario's wish, not a readiness wait
            with self._lock:
                if not self._lit(dc):
                    break  # powered off again meanwhile (flapping)
                self._boot(dc, wave)
        names = self.topology.names(dc)
        unhealthy = self._wait_healthy(names)
        event = PowerEvent(dc, "on", tuple(names), time.monotonic() - started, healthy=not unhealthy, detail=unhealthy)
        self.journal.record(
            EventName.POWER_ON,
            dc=dc,
            seconds=event.seconds,
            healthy=event.healthy,
            detail=unhealthy,
            boot_order=[list(w) for w in waves],
            **self._facts(names),
        )
        return event

    def start_instance(self, name: str) -> PowerEvent:
        dc = self.topology.dc_of(name)
        with self._lock:
            if self._running(name):
                raise RuntimeError_(f"{name} is already running")
            started = time.monotonic()
            self._boot(dc, [name])
        unhealthy = self._wait_healthy([name])
        event = PowerEvent(dc, "start", (name,), time.monotonic() - started, healthy=not unhealthy, detail=unhealthy)
        self.journal.record(
            EventName.START_INSTANCE, dc=dc, instance=name, healthy=event.healthy, **self._facts([name])
        )
        return event

    def switch_profile(self, profile: Profile) -> dict[str, str]:
        """Swap every running instance's profile live; instances started later start with it too."""
        with self._lock:
            self._keep_profile(profile)
            running = [name for name, info in self.status().items() if info["state"] == "running"]
        with InstanceClient(ADMIN_S, admin_secret=self.admin_secret) as client:
            body = profile.model_dump(mode="json")
            results = {name: client.outcome("PUT", self.topology.url(name) + ADMIN_PROFILE, body) for name in running}
        self.journal.record(EventName.PROFILE, profile=profile.name, results=results)
        return results

    def _wait_healthy(self, names: list[str]) -> str:
        """Poll until every instance answers /healthz; "" when they all do, else why not (never raises)."""
        deadline = time.monotonic() + self.health_timeout_s
        pending = set(names)
        with InstanceClient(HEALTH_S) as client:
            while pending:
                if failed := self._failed_while_starting(sorted(pending)):
                    return failed
                for name in sorted(pending):
                    if self._answering(name) and client.healthy(self.topology.url(name)):
                        pending.discard(name)
                if not pending:
                    break
                if time.monotonic() > deadline:
                    return (
                        f"not healthy within {self.health_timeout_s:g}s: {', '.join(sorted(pending))} "
                        f"({self._logs_hint()})"
                    )
                time.sleep(self.HEALTH_POLL_S)  # poll interval, bounded by the deadline above
        return ""
