"""Applies actions to a runtime and keeps what each one needs to be undone: every fault has a rollback.

``revert_all`` is the rollback of last resort: link faults removed, killed instances restarted, power
restored to every dark data center, the profile and the load put back. It runs at the end of every run, on
Ctrl-C, SIGTERM and exceptions, and `blackout panic` calls it on a live stack.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Callable
from typing import Any

from chaos.faults.actions import KINDS, check_action, runtime_refusal
from chaos.faults.active import ActiveFault, event_output
from chaos.faults.handlers import LoadControl
from chaos.faults.link import FaultNotLifted, LinkFaults
from chaos.faults.model import ActionBase
from chaos.journal import EventName, Journal
from chaos.runtime.base import LINKS, Runtime, RuntimeError_
from services.common.errors import BlackoutError, ConflictError, UsageError
from services.common.policy import Profile


class FaultInjector:
    def __init__(
        self,
        runtime: Runtime,
        journal: Journal,
        rng: random.Random,
        *,
        profile: Profile | None = None,
        load: LoadControl | None = None,
        base_users: int = 0,
        on_change: Callable[[], None] | None = None,
        quiet: bool = False,
    ) -> None:
        """``quiet``: link faults are pushed quiet (a hidden-fault exercise's): nothing a team reads names them."""
        self.runtime = runtime
        self.journal = journal
        self.rng = rng
        self.base_profile = profile
        self.load = load
        self.base_users = base_users
        self.on_change = on_change or (lambda: None)
        self.quiet = quiet
        self.links = (
            LinkFaults(runtime.topology, runtime.admin_secret, journal=journal, down=self._down)
            if LINKS in runtime.capabilities
            else None
        )
        self._active: dict[str, ActiveFault] = {}
        # data centers an operator powered on by hand: a flapping generator's later steps pass them by
        self.stable_power: set[str] = set()
        self._lock = threading.RLock()
        self._ids = itertools.count(1)

    # -- applying ----------------------------------------------------------------------------------
    def apply(self, action: ActionBase, source: str = "action", where: str = "") -> tuple[str | None, dict[str, Any]]:
        """Take the action: the id of the fault now active (None for power_on, which restores) and its output."""
        fault, output = self.begin(action, source, where)
        return (fault.id if fault is not None else None), output

    def begin(
        self, action: ActionBase, source: str = "action", where: str = ""
    ) -> tuple[ActiveFault | None, dict[str, Any]]:
        """Take the action: the fault now active (None for power_on, which restores) and its output.
        A target the topology lacks is refused naming ``source`` and the field (under ``where``)."""
        kind = KINDS[action.kind]
        if refusal := runtime_refusal(action.kind, self.runtime.name, self.runtime.capabilities):
            raise UsageError(refusal)
        if kind.handler is None:
            raise UsageError(f"{action.kind} is unrolled into its steps by a scenario's plan: it needs a scenario run")
        check_action(action, self.runtime.topology, source, where)
        fault_id = action.id or f"{action.kind.replace('_', '-')}-{next(self._ids)}"
        with self._lock:
            if fault_id in self._active:
                raise ConflictError(f"a fault with id '{fault_id}' is active already")
        fault = kind.handler(self, fault_id, action)
        if isinstance(fault, dict):  # power_on: nothing to undo
            self.on_change()
            return None, fault
        with self._lock:
            self._active[fault.id] = fault
        self.journal.record(EventName.FAULT_ON, id=fault.id, action=action.to_data(), output=fault.output)
        self.on_change()
        return fault, fault.output

    def revert(self, fault_id: str, only: ActiveFault | None = None) -> dict[str, Any]:
        """Undo the fault; ``only``: undo it only if it is still that very fault (not a later one with its id).
        A fault whose undo fails stays active (and listed): the error is journaled and raised."""
        with self._lock:
            fault = self._active.get(fault_id)
            if fault is None or (only is not None and fault is not only):
                known = ", ".join(self.active_ids()) or "none"
                raise UsageError(f"no active fault '{fault_id}'; active faults: {known}")
            if fault.reverting:
                raise ConflictError(f"fault '{fault_id}' is being reverted already")
            fault.reverting = True
        try:
            output = fault.undo()
        except BaseException as exc:
            fault.reverting = False
            self.journal.record(
                EventName.FAULT_OFF_FAILED, id=fault_id, kind=fault.action.kind, error=f"{type(exc).__name__}: {exc}"
            )
            raise
        with self._lock:
            if self._active.get(fault_id) is fault:
                del self._active[fault_id]
        self.journal.record(EventName.FAULT_OFF, id=fault_id, kind=fault.action.kind, output=output)
        self.on_change()
        return output

    def revert_all(self) -> list[dict[str, Any]]:
        """Undo every active fault, newest first, then power on any data center still dark and start any instance
        still dark in a lit one."""
        results = []
        for fault_id in reversed(self.active_ids()):
            try:
                results.append({"id": fault_id, "output": self.revert(fault_id), "status": "succeeded"})
            except Exception as exc:  # a rollback that fails must not stop the others
                results.append({"id": fault_id, "status": "failed", "error": f"{type(exc).__name__}: {exc}"})
        for dc, on in self.runtime.powered().items():
            if not on:
                event = self.runtime.power_on(dc)
                results.append({"id": f"power-on-{dc}", "status": "succeeded", "output": event_output(event)})
        # A data center powered on in part (a boot that stalled, `rest: dark`) gets its dark instances back too.
        powered = self.runtime.powered()
        for name, info in self.runtime.status().items():
            if info["state"] != "running" and powered.get(info["dc"], False):
                try:
                    event = self.runtime.start_instance(name)
                    results.append({"id": f"start-{name}", "status": "succeeded", "output": event_output(event)})
                except RuntimeError_ as exc:
                    results.append({"id": f"start-{name}", "status": "failed", "error": str(exc)})
        if self.links is not None:
            # Parts of a fault whose revert just failed are left to it: it stays listed, and a later revert retries.
            owned = {part for f in self.active() if KINDS[f.action.kind].capability == LINKS for part in f.output}
            for fault_id in [i for i in self.links.active() if i not in owned]:
                try:
                    self.links.remove(fault_id)
                except FaultNotLifted as exc:
                    results.append({"id": fault_id, "status": "failed", "error": str(exc)})
        self.on_change()
        return results

    def close(self) -> None:
        if self.links is not None:
            self.links.close()

    def active(self) -> list[ActiveFault]:
        with self._lock:
            return list(self._active.values())

    def active_ids(self) -> list[str]:
        with self._lock:
            return list(self._active)

    def counts_by_kind(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for fault in self.active():
            counts[fault.action.kind] = counts.get(fault.action.kind, 0) + 1
        return counts

    # -- what the handlers (chaos.faults.handlers) use ----------------------------------------------
    def settle_power_off(self, dc: str) -> None:
        """Power is back on ``dc``: the power_off that cut it has nothing left to undo."""
        with self._lock:
            for fault in list(self._active.values()):
                if fault.action.kind == "power_off" and fault.output.get("dc") == dc:
                    del self._active[fault.id]
                    self.journal.record(EventName.FAULT_OFF, id=fault.id, kind="power_off", output={"by": "power_on"})

    def settle(self, kind: str, instance: str) -> list[str]:
        """``instance`` is a new process: the faults of ``kind`` that lived in it alone (a kill, a brownout) are
        over; each is reverted (its undo finds nothing left to do, or lifts what a renewal would put back)."""
        settled = []
        for fault in self.active():
            if fault.action.kind == kind and self._lives_in(fault) == [instance]:
                try:
                    self.revert(fault.id, only=fault)
                    settled.append(fault.id)
                except BlackoutError:
                    pass  # being reverted by someone else, or its undo failed (journaled): it stays listed
        return settled

    def _lives_in(self, fault: ActiveFault) -> list[str]:
        if fault.action.kind == "kill_instance":
            return list(fault.output.get("instances", []))
        target = getattr(fault.action.spec, "target", None)
        return self.runtime.topology.find(target) if isinstance(target, str) else []

    def switch_profile(self, profile: Profile) -> dict[str, str]:
        """Every instance, and the users' side too (edge failover, the app's own retries), follow the profile."""
        output = self.runtime.switch_profile(profile)
        if self.load is not None:
            self.load.set_load(edge_failover=profile.edge_failover, client_attempts=profile.client_attempts)
        return output

    def _down(self, name: str) -> bool:
        state: str = self.runtime.status()[name]["state"]
        return state != "running"
