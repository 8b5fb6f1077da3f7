"""The chaos controller of one running stack: power, faults, profile, scenario runs, panic, and the events.

The control API (chaos/control_api.py) is its HTTP face. Everything it changes goes through the fault injector,
so `panic` (and the end of every run) can undo all of it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from chaos.engine.extension import Extension
from chaos.engine.scenario import library
from chaos.events import EventBus
from chaos.faults.actions import KINDS, LEVERS, check_action, make, parse_action
from chaos.faults.active import ActiveFault
from chaos.faults.injector import FaultInjector
from chaos.faults.model import ActionBase
from chaos.journal import EventName, Journal
from chaos.library import profile_named
from chaos.runtime.base import Runtime
from services.common.errors import BlackoutError, ConflictError, UsageError
from services.common.policy import Profile

RUN_STOP_TIMEOUT_S = 120.0  # a run's rollbacks and teardown


class Runner(Protocol):
    """Runs a scenario on the controller's stack, lent to it (chaos.stack.Stack.lend_run), until it ends or ``stop``
    is set; its outcome: {"run_dir", "deviated", "reasons"}."""

    def __call__(
        self,
        scenario: str | Path,
        profile: Path | None,
        seed: int | None,
        users: int | None,
        stop: threading.Event,
        runs_root: Path,
        quiet: bool = False,
        extension: Extension | None = None,
    ) -> dict[str, Any]: ...


class Controller:
    """``runner``: how scenario runs start on this stack; None when the stack is running one of its own already
    (`blackout run`), which would not share it."""

    def __init__(
        self,
        runtime: Runtime,
        injector: FaultInjector,
        journal: Journal,
        bus: EventBus,
        runs_root: Path,
        runner: Runner | None = None,
    ) -> None:
        self.runner = runner
        self.runtime = runtime
        self.injector = injector
        self.journal = journal
        self.bus = bus
        self.runs_root = runs_root
        self.run_thread: threading.Thread | None = None
        self.run_stop: threading.Event | None = None
        self.run_extension: Extension | None = None  # the run in progress's end, movable (extend_run)
        self.run_info: dict[str, Any] = {}
        # The injector of the scenario run in progress: levers act there, where its faults and its users' edge
        # (the load generator) are, so a power-on settles its power cut and a profile reaches its users' edge.
        self.run_injector: FaultInjector | None = None
        self._timers: list[threading.Timer] = []
        self._panic_thread: threading.Thread | None = None  # a panic's rollbacks, waiting for a run's end
        self._lock = threading.Lock()

    # -- reading -----------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return {
            "instances": self.runtime.status(),
            "power": self.runtime.powered(),
            "faults": [f.to_data() for f in self.injector.active() + self.run_levers()],
            "run": self.run_state(),
        }

    def run_levers(self) -> list[ActiveFault]:
        """The levers pulled during the run in progress (its own faults are the run's, not listed here)."""
        run = self.run_injector
        return [f for f in run.active() if KINDS[f.action.kind].lever] if run is not None else []

    def levers(self) -> FaultInjector:
        """Where a lever acts: the run in progress, else the stack's own injector."""
        return self.run_injector or self.injector

    def run_state(self) -> dict[str, Any]:
        running = self.run_thread is not None and self.run_thread.is_alive()
        return {**self.run_info, "running": running}

    @staticmethod
    def scenarios() -> list[dict[str, Any]]:
        return [
            {
                "name": s.name,
                "title": s.title,
                "description": s.description,
                "learn": s.learn,
                "users": s.load.users,
                "capacity": s.load.capacity,
                "duration_s": s.duration,
            }
            for s in library()
        ]

    # -- acting ------------------------------------------------------------------------------------
    def power(self, dc: str, kind: str) -> dict[str, Any]:
        """``kind``: power_off or power_on (chaos.faults.actions) on the data center ``dc``."""
        if kind not in ("power_off", "power_on"):
            raise UsageError(f"unknown power action '{kind}': power_off or power_on")
        if kind == "power_on":
            output: dict[str, Any] = self.lever(make(kind, dc, "power"))["output"]
            return output
        fault_id, output = self.injector.apply(make(kind, dc, "power"), "power")
        return {**output, "fault_id": fault_id}

    def lever(self, action: ActionBase, source: str = "lever") -> dict[str, Any]:
        """Pull one lever (chaos.faults.actions: a live action that starts no outage) where it acts: on the run
        in progress, else on the stack. A power-on also puts its data center on stable power: a flapping
        generator stops driving it, and when every instance runs already that is all it does."""
        kind = KINDS[action.kind]
        if not kind.lever:
            raise UsageError(f"{action.kind} is not a lever; levers: {', '.join(LEVERS)}")
        if action.kind == "profile":  # a library name, never a path: the caller holds only a token
            action = action.model_copy(update={"spec": str(profile_named(action.spec))})
        if action.kind == "deploy":  # the same, refused before the roll starts
            spec = action.spec.model_copy(update={"profile": str(profile_named(action.spec.profile))})
            action = action.model_copy(update={"spec": spec})
        injector = self.levers()
        if action.kind == "power_on":
            check_action(action, self.runtime.topology, source, "body")
            dc = action.spec.dc
            injector.stable_power.add(dc)
            state = self.runtime.status()
            if all(state[n]["state"] == "running" for n in self.runtime.topology.names(dc)):
                return {"id": None, "output": {"dc": dc, "note": "every instance runs: it is on stable power now"}}
        fault, output = injector.begin(action, source=source, where="body")
        if action.kind == "power_on" and injector is not self.injector:
            # a cut made by hand during the run is the stack's: power back on settles it there too
            self.injector.settle_power_off(action.spec.dc)
        if fault is not None and action.duration_s is not None:
            self._expire_later(fault, action.duration_s)
        return {"id": fault.id if fault is not None else None, "output": output}  # None: nothing stays to undo

    def inject(self, body: object) -> dict[str, Any]:
        """One action as data, e.g. {"latency": {"from": "dc-west", "to": "dc-east", "ms": 300}, "for": "10s"}."""
        action = parse_action(body, "request body", "body")
        if not KINDS[action.kind].live:
            raise UsageError(f"{action.kind} needs a scenario run: POST /runs")
        if KINDS[action.kind].lever:
            return self.lever(action, source="fault")
        fault, output = self.injector.begin(action, source="fault", where="body")  # an unknown target: 404
        if fault is not None and action.duration_s is not None:
            self._expire_later(fault, action.duration_s)
        return {"id": fault.id if fault is not None else None, "output": output}

    def _expire_later(self, fault: ActiveFault, seconds: float) -> None:
        timer = threading.Timer(seconds, self._expire, args=(fault,))
        timer.daemon = True
        timer.start()
        self._timers.append(timer)

    def remove(self, fault_id: str) -> dict[str, Any]:
        """Undo a fault of the stack's, or a lever pulled during the run in progress."""
        run = self.run_injector
        if run is not None and fault_id not in self.injector.active_ids():
            if any(f.id == fault_id for f in self.run_levers()):
                return {"id": fault_id, "output": run.revert(fault_id)}
        return {"id": fault_id, "output": self.injector.revert(fault_id)}

    def switch_profile(self, profile: Profile) -> dict[str, str]:
        """Every instance and the users' edge of the run in progress (its load generator) follow the profile."""
        return self.levers().switch_profile(profile)

    def panic(self) -> dict[str, Any]:
        """Undo every fault and restore every data center's power; a scenario run is told to stop.

        Answers at once: with a run in progress, the run's own thread rolls back its faults as soon as it
        sees the stop, and this controller's rollbacks follow in the background once the run has ended
        (never beside the run's: two rollbacks at once would both power the same data center on)."""
        thread = self.run_thread
        if self.stop_run(wait=False) and thread is not None:
            self._panic_thread = threading.Thread(
                target=self._panic_after, args=(thread,), name="panic-after-run", daemon=True
            )
            self._panic_thread.start()
            self.journal.record(EventName.PANIC, stopped_run=True, results=[], pending=True)
            return {
                "stopped_run": True,
                "rollbacks": [],
                "pending": "the run is stopping: its rollbacks run now, then every remaining fault is undone",
                "power": self.runtime.powered(),
            }
        results = self.injector.revert_all()
        self.journal.record(EventName.PANIC, results=results, stopped_run=False)
        return {"stopped_run": False, "rollbacks": results, "power": self.runtime.powered()}

    def _panic_after(self, run: threading.Thread) -> None:
        run.join(timeout=RUN_STOP_TIMEOUT_S)
        try:
            results = self.injector.revert_all()
        except Exception as exc:  # in a thread: journaled, not lost
            results = [{"status": "failed", "error": f"{type(exc).__name__}: {exc}"}]
        self.journal.record(EventName.PANIC_ROLLBACKS, results=results)

    def start_run(
        self,
        scenario: str | Path,
        profile: Path | None,
        seed: int | None,
        users: int | None,
        runs_root: Path | None = None,
        quiet: bool = False,
    ) -> dict[str, Any]:
        """``runs_root``: where the run's folder goes (default the stack's runs folder; an exercise's is private);
        ``quiet``: its link faults are named nowhere a team reads (an exercise's round)."""
        runner = self.runner
        if runner is None:
            raise ConflictError("this stack is running its own scenario (`blackout run`): start runs on `blackout up`")
        with self._lock:
            if self.run_thread is not None and self.run_thread.is_alive():
                raise ConflictError(f"a run is in progress ({self.run_info.get('scenario')}): stop it first")
            stop, extension = threading.Event(), Extension()
            self.run_stop, self.run_extension = stop, extension
            self.run_info = {"scenario": Path(scenario).stem, "seed": seed, "result": None}

            def work() -> None:
                try:
                    self.run_info["result"] = runner(
                        scenario, profile, seed, users, stop, runs_root or self.runs_root, quiet, extension
                    )
                except Exception as exc:  # reported through the status, not lost in a thread
                    self.run_info["result"] = {"error": f"{type(exc).__name__}: {exc}"}

            self.run_thread = threading.Thread(target=work, name="scenario-run", daemon=True)
            self.run_thread.start()
            return self.run_state()

    def attach(self, injector: FaultInjector) -> Callable[[], None]:
        """A run lent this stack is armed: levers act on it (its faults, its users' edge) until its rollbacks
        begin, when the returned function detaches it."""
        self.run_injector = injector

        def detach() -> None:
            self.run_injector = None

        return detach

    def extend_run(self, seconds: float) -> float:
        """The run in progress ends ``seconds`` later (its users and its faults keep going); the seconds added
        to its planned duration in all."""
        extension = self.run_extension
        if extension is None or not self.run_state()["running"]:
            raise ConflictError("no run in progress: nothing to extend")
        try:
            total = extension.extend(seconds)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        self.run_info["extended_s"] = total
        return total

    def stop_run(self, wait: bool = False) -> bool:
        thread, stop = self.run_thread, self.run_stop
        if thread is None or stop is None or not thread.is_alive():
            return False
        stop.set()
        if wait:
            thread.join(timeout=RUN_STOP_TIMEOUT_S)
        return True

    def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self.stop_run(wait=True)
        if self._panic_thread is not None:  # its rollbacks finish before the caller's own
            self._panic_thread.join(timeout=RUN_STOP_TIMEOUT_S)

    def _expire(self, fault: ActiveFault) -> None:
        """Revert this very fault: not a later one that took its id after it was removed by hand."""
        try:
            self.injector.revert(fault.id, only=fault)
        except BlackoutError:
            pass  # removed (or being removed) before its time; or its undo failed, journaled as fault-off-failed
