"""A runtime that records what it was asked, with no processes: for the controller's and engine's tests."""

from __future__ import annotations

from pathlib import Path

from chaos.runtime.base import KILL, POWER, PowerEvent, Runtime, RuntimeError_
from chaos.topology import load_topology
from services.common.policy import Profile

PROJECT = Path(__file__).resolve().parents[2]


class RecordingRuntime(Runtime):
    name = "recording"
    capabilities = frozenset({POWER, KILL})  # no link faults: no services

    def __init__(self) -> None:
        self.topology = load_topology(PROJECT / "topologies" / "fragile.yaml")
        self.admin_secret = "admin"
        self.power = {"dc-east": True, "dc-west": True}
        self.killed: set[str] = set()
        self.profiles: list[str] = []

    def up(self) -> None: ...

    def down(self) -> None: ...

    def _power(self, dc: str, on: bool) -> PowerEvent:
        self.topology.require_dc(dc)
        if self.power[dc] == on:
            raise RuntimeError_(f"{dc} is already powered {'on' if on else 'off'}")
        self.power[dc] = on
        return PowerEvent(dc, "on" if on else "off", tuple(self.topology.data_centers[dc].instances), 0.01)

    def power_off(self, dc: str) -> PowerEvent:
        return self._power(dc, False)

    def power_on(self, dc: str, boot_order: list[str] | None = None, stagger_s: float = 0.0) -> PowerEvent:
        return self._power(dc, True)

    def kill_instance(self, name: str) -> PowerEvent:
        self.killed.add(name)
        return PowerEvent(self.topology.instances()[name][0], "kill", (name,), 0.01)

    def start_instance(self, name: str) -> PowerEvent:
        self.killed.discard(name)
        return PowerEvent(self.topology.instances()[name][0], "start", (name,), 0.01)

    def powered(self) -> dict[str, bool]:
        return dict(self.power)

    def switch_profile(self, profile: Profile) -> dict[str, str]:
        self.profiles.append(profile.name)
        return {"gateway-west": "ok"}

    def status(self) -> dict[str, dict]:
        return {
            name: {
                "dc": dc,
                "service": inst.service,
                "port": inst.port,
                "pid": None,
                "state": "running" if self.power[dc] and name not in self.killed else "powered-off",
            }
            for name, (dc, inst) in self.topology.instances().items()
        }
