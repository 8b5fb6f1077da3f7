"""Applies actions to a runtime and keeps what each one needs to be undone: every fault has a rollback.

``revert_all`` is the rollback of last resort: link faults removed, killed instances restarted, power
restored to every dark data center, the profile and the load put back. It runs at the end of every run, on
Ctrl-C, SIGTERM and exceptions, and `blackout panic` calls it on a live stack.
"""
from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from chaos.faults.link import FaultNotLifted, LinkFaults, link_bodies
from chaos.faults.model import LINK_ACTIONS, Action
from chaos.journal import EventName, Journal
from chaos.runtime.base import PowerEvent, Runtime
from services.common.errors import ConflictError, UsageError
from services.common.policy import Profile, load_profile

PROFILES = Path(__file__).resolve().parents[2] / "profiles"


def profile_file(text: str) -> Path:
    """A profile file, or the name of one in profiles/ (``resilient``); an unknown name lists the known ones."""
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    named = PROFILES / f"{text}.yaml"
    if not named.exists():
        known = ", ".join(sorted(p.stem for p in PROFILES.glob("*.yaml")))
        raise UsageError(f"{text}: no such profile file or name; profiles: {known}")
    return named


class LoadControl(Protocol):
    def set_load(self, users: int | None = None, spawn_rate: float | None = None,
                 edge_failover: bool | None = None, client_attempts: int | None = None) -> None: ...


@dataclass(eq=False)  # one instance is one fault: a later fault reusing its id is another
class ActiveFault:
    id: str
    action: Action
    started: float  # time.time()
    undo: Callable[[], dict]
    output: dict = field(default_factory=dict)
    reverting: bool = False  # its undo is running: it stays listed (and its id taken) until that succeeds

    def to_data(self) -> dict:
        return {"id": self.id, "action": self.action.to_data(), "started": self.started, "output": self.output}


class FaultInjector:
    def __init__(
        self, runtime: Runtime, journal: Journal, rng: random.Random, *,
        profile: Profile | None = None, load: LoadControl | None = None, base_users: int = 0,
        on_change: Callable[[], None] | None = None,
    ) -> None:  # fmt: skip
        unsupported = (LINK_ACTIONS | {"power_off", "kill_instance"}) - runtime.supported_faults
        self.runtime = runtime
        self.journal = journal
        self.rng = rng
        self.base_profile = profile
        self.load = load
        self.base_users = base_users
        self.on_change = on_change or (lambda: None)
        self.links = None if unsupported & LINK_ACTIONS else LinkFaults(
            runtime.topology, runtime.admin_secret, journal=journal, down=self._down)
        self._active: dict[str, ActiveFault] = {}
        self._lock = threading.RLock()
        self._ids = itertools.count(1)

    # -- applying ----------------------------------------------------------------------------------
    def apply(self, action: Action) -> tuple[str | None, dict]:
        """Take the action: the id of the fault now active (None for power_on, which restores) and its output."""
        fault, output = self.begin(action)
        return (fault.id if fault is not None else None), output

    def begin(self, action: Action) -> tuple[ActiveFault | None, dict]:
        """Take the action: the fault now active (None for power_on, which restores) and its output."""
        if action.kind not in self.runtime.supported_faults and action.kind not in ("power_on", "profile", "load"):
            raise UsageError(f"the {self.runtime.name} runtime cannot do {action.kind}; it supports: "
                             f"{', '.join(sorted(self.runtime.supported_faults))}")  # fmt: skip
        fault_id = action.id or f"{action.kind.replace('_', '-')}-{next(self._ids)}"
        with self._lock:
            if fault_id in self._active:
                raise ConflictError(f"a fault with id '{fault_id}' is active already")
        handler = getattr(self, f"_{action.kind}")
        fault = handler(fault_id, action)
        if isinstance(fault, dict):  # power_on: nothing to undo
            self.on_change()
            return None, fault
        with self._lock:
            self._active[fault.id] = fault
        self.journal.record(EventName.FAULT_ON, id=fault.id, action=action.to_data(), output=fault.output)
        self.on_change()
        return fault, fault.output

    def revert(self, fault_id: str, only: ActiveFault | None = None) -> dict:
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
            self.journal.record(EventName.FAULT_OFF_FAILED, id=fault_id, kind=fault.action.kind, error=f"{type(exc).__name__}: {exc}")
            raise
        with self._lock:
            if self._active.get(fault_id) is fault:
                del self._active[fault_id]
        self.journal.record(EventName.FAULT_OFF, id=fault_id, kind=fault.action.kind, output=output)
        self.on_change()
        return output

    def revert_all(self) -> list[dict]:
        """Undo every active fault, newest first, then power on any data center still dark."""
        results = []
        for fault_id in reversed(self.active_ids()):
            try:
                results.append({"id": fault_id, "output": self.revert(fault_id), "status": "succeeded"})
            except Exception as exc:  # a rollback that fails must not stop the others
                results.append({"id": fault_id, "status": "failed", "error": f"{type(exc).__name__}: {exc}"})
        for dc, on in self.runtime.powered().items():
            if not on:
                event = self.runtime.power_on(dc)
                results.append({"id": f"power-on-{dc}", "status": "succeeded", "output": _event(event)})
        if self.links is not None:
            # Parts of a fault whose revert just failed are left to it: it stays listed, and a later revert retries.
            owned = {part for f in self.active() if f.action.kind in LINK_ACTIONS for part in f.output}
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

    # -- one method per action -----------------------------------------------------------------------
    def _power_off(self, fault_id: str, action: Action) -> ActiveFault:
        dc = self._pick(action.spec, list(self.runtime.topology.data_centers))
        self.runtime.topology.require_dc(dc)
        event = self.runtime.power_off(dc)

        def undo() -> dict:
            if self.runtime.powered().get(dc, True):
                return {"dc": dc, "note": "already powered on"}
            return _event(self.runtime.power_on(dc))

        return ActiveFault(fault_id, action, time.time(), undo, _event(event))

    def _power_on(self, fault_id: str, action: Action) -> dict:
        spec = action.spec
        self.runtime.topology.require_dc(spec.dc)
        # Restoring power settles the power_off that cut it: it has nothing left to undo.
        with self._lock:
            for fault in list(self._active.values()):
                if fault.action.kind == "power_off" and fault.output.get("dc") == spec.dc:
                    del self._active[fault.id]
                    self.journal.record(EventName.FAULT_OFF, id=fault.id, kind="power_off", output={"by": "power_on"})
        return _event(self.runtime.power_on(spec.dc, list(spec.boot_order), spec.stagger))

    def _kill_instance(self, fault_id: str, action: Action) -> ActiveFault:
        running = [n for n, info in self.runtime.status().items() if info["state"] == "running"]
        candidates = [n for n in self.runtime.topology.find(action.spec) if n in running] if action.spec != "random" else running
        if not candidates:
            raise UsageError(f"no running instance matches '{action.spec}'; running: {', '.join(running) or 'none'}")
        name = self.rng.choice(sorted(candidates))
        event = self.runtime.kill_instance(name)

        def undo() -> dict:
            if self.runtime.status()[name]["state"] == "running" or not self.runtime.powered().get(event.dc, False):
                return {"instance": name, "note": "running again already, or its data center is dark"}
            return _event(self.runtime.start_instance(name))

        return ActiveFault(fault_id, action, time.time(), undo, _event(event))

    def _link(self, fault_id: str, action: Action) -> ActiveFault:
        if self.links is None:
            raise UsageError(f"the {self.runtime.name} runtime cannot inject link faults")
        parts = link_bodies(self.runtime.topology, action.kind, action.spec, self.rng.randrange(2**31))
        ids = [fault_id if len(parts) == 1 else f"{fault_id}.{n}" for n in range(1, len(parts) + 1)]
        output = {pid: self.links.add(pid, instances, body) for pid, (instances, body) in zip(ids, parts)}

        def undo() -> dict:
            output, errors = {}, []
            for pid in ids:  # every part, even after one failed: what was lifted stays lifted
                try:
                    output[pid] = self.links.remove(pid)  # type: ignore[union-attr]
                except FaultNotLifted as exc:
                    errors.append(str(exc))
            if errors:
                raise FaultNotLifted("; ".join(errors))
            return output

        return ActiveFault(fault_id, action, time.time(), undo, output)

    _latency = _errors = _blackhole = _partition = _brownout = _link

    def _profile(self, fault_id: str, action: Action) -> ActiveFault:
        profile = load_profile(profile_file(action.spec))
        before = self.base_profile
        output = self.switch_profile(profile)

        def undo() -> dict:
            if before is None:
                return {"note": "no profile to go back to"}
            return self.switch_profile(before)

        return ActiveFault(fault_id, action, time.time(), undo, {"profile": profile.name, "instances": output})

    def switch_profile(self, profile: Profile) -> dict[str, str]:
        """Every instance, and the users' side too (edge failover, the app's own retries), follow the profile."""
        output = self.runtime.switch_profile(profile)
        if self.load is not None:
            self.load.set_load(edge_failover=profile.edge_failover, client_attempts=profile.client_attempts)
        return output

    def _load(self, fault_id: str, action: Action) -> ActiveFault:
        if self.load is None:
            raise UsageError("no load generator is running: a load step needs a scenario run")
        self.load.set_load(users=action.spec.users, spawn_rate=action.spec.spawn_rate)

        def undo() -> dict:
            self.load.set_load(users=self.base_users)  # type: ignore[union-attr]
            return {"users": self.base_users}

        return ActiveFault(fault_id, action, time.time(), undo, {"users": action.spec.users})

    def _down(self, name: str) -> bool:
        return self.runtime.status()[name]["state"] != "running"

    def _pick(self, name: str, choices: list[str]) -> str:
        return self.rng.choice(sorted(choices)) if name == "random" else name


def _event(event: PowerEvent) -> dict[str, Any]:
    return {"dc": event.dc, "action": event.action, "instances": list(event.instances), "seconds": event.seconds,
            "healthy": event.healthy, "detail": event.detail}  # fmt: skip
