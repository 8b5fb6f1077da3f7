"""A stack that is already up, lent to a scenario run started from the control API.

The run neither starts nor stops it: ``up`` switches it to the run's profile, ``down`` switches it back.
Everything else is the lender's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chaos.journal import EventName, Journal
from chaos.runtime.base import PowerEvent, Runtime
from chaos.topology import Topology
from services.common.policy import Profile, load_profile


class BorrowedRuntime(Runtime):
    def __init__(self, lender: Runtime, profile: Path) -> None:
        self.lender = lender
        self.run_profile = load_profile(profile)
        self.previous: Profile | None = None

    def __getattr__(self, name: str) -> Any:  # name, topology, admin_secret, capabilities, ...
        return getattr(self.lender, name)

    # Read-only views of the lender's: Runtime declares them plain attributes, which mypy will not let a
    # property override; nothing sets them on a borrowed runtime.
    @property
    def topology(self) -> Topology:  # type: ignore[override]
        return self.lender.topology

    @property
    def capabilities(self) -> frozenset[str]:  # type: ignore[override]
        return self.lender.capabilities

    def up(self) -> None:
        current = getattr(self.lender, "profile", None)
        self.previous = load_profile(current) if current else None
        if self.previous is None or self.previous != self.run_profile:
            self.lender.switch_profile(self.run_profile)

    def down(self) -> None:
        if self.previous is not None and self.previous != self.run_profile:
            self.lender.switch_profile(self.previous)

    def power_off(self, dc: str) -> PowerEvent:
        return self.lender.power_off(dc)

    def power_on(self, dc: str, boot_order: list[str] | None = None, stagger_s: float = 0.0) -> PowerEvent:
        return self.lender.power_on(dc, boot_order, stagger_s)

    def kill_instance(self, name: str) -> PowerEvent:
        return self.lender.kill_instance(name)

    def start_instance(self, name: str) -> PowerEvent:
        return self.lender.start_instance(name)

    def powered(self) -> dict[str, bool]:
        return self.lender.powered()

    def switch_profile(self, profile: Profile) -> dict[str, str]:
        return self.lender.switch_profile(profile)

    def status(self) -> dict[str, dict[str, Any]]:
        return self.lender.status()


def lend(lender: Runtime, profile: Path, journal: Journal) -> BorrowedRuntime:
    """The stack ``lender``, lent to a run. The run's journal names the stack's own run directory: its databases,
    profile copies and journal are the run's evidence."""
    stack_dir = getattr(lender, "run_dir", None)  # local and docker stacks keep their files there
    if stack_dir is not None:  # else the audit fails, naming what it could not find
        journal.record(EventName.BORROWED, stack_dir=str(Path(stack_dir).resolve()))
    return BorrowedRuntime(lender, profile)
