"""The composition root: a stack is a runtime, its journal and event bus, the fault injector, and (when it serves)
the controller and its control API, built in this order and torn down in the reverse one. Every step of the
teardown runs even when one before it fails, and none is cut short by a second Ctrl-C or a SIGTERM.

`blackout up` (chaos/supervisor.py) builds one and keeps it up; `blackout run` (chaos/scenario_commands.py) builds one for
the run; a run started from the control API, or a workshop exercise's hidden run, borrows the stack that is up
(its runtime lent, chaos/runtime/borrowed.py): such a stack serves no control API of its own, so a controller
never builds another controller.
"""

from __future__ import annotations

import random
import sys
import threading
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from rich.console import Console

from chaos.control_api import ControlServer
from chaos.controller import Controller
from chaos.engine.extension import Extension
from chaos.engine.run import DEFAULT_PROFILE, RunOptions, RunResult, run_on
from chaos.events import EventBus
from chaos.faults.handlers import LoadControl
from chaos.faults.injector import FaultInjector
from chaos.interrupts import uninterruptible
from chaos.journal import Journal
from chaos.runtime.base import Runtime
from chaos.runtime.choice import RuntimeChoice, build_runtime
from chaos.topology import Topology
from services.common.policy import Profile


class Stack:
    """``runtime``: a kind to start, a running stack to borrow, or a maker (chaos.runtime.choice). ``serve``: a
    controller and its control API; ``runs``: that controller may start scenario runs, each on this stack."""

    def __init__(
        self,
        runs_root: Path,
        *,
        runtime: RuntimeChoice = "local",
        bus: EventBus | None = None,
        serve: bool = False,
        runs: bool = False,
        room_bind: str | None = None,
    ) -> None:
        self.runs_root = runs_root
        self.room_bind = room_bind  # the team rooms' address besides the loopback (`up --room-bind`)
        self.choice = runtime
        self.bus = bus or EventBus()
        self.serve, self.runs = serve, runs
        self.run_dir: Path | None = None
        self.journal: Journal | None = None
        self.runtime: Runtime | None = None
        self.injector: FaultInjector | None = None
        self.controller: Controller | None = None
        self.server: ControlServer | None = None
        self.rollbacks: list[dict[str, Any]] = []  # what the teardown rolled back
        self._teardown = ExitStack()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- building, in order ------------------------------------------------------------------------
    def open(self, run_dir: Path) -> Journal:
        """The stack's journal, in ``run_dir``, publishing on the stack's bus."""
        self.run_dir = run_dir
        self.journal = Journal(run_dir, self.bus)
        return self.journal

    def power_up(self, topology: Topology, profile: Path | None) -> Runtime:
        """Build the runtime and bring it up; its teardown is the last step of the stack's."""
        if self.run_dir is None or self.journal is None:
            raise RuntimeError("open the stack's run directory first")
        runtime = build_runtime(self.choice, topology, self.run_dir, profile, self.journal)
        self.runtime = runtime
        self._teardown.callback(runtime.down)  # before up: a runtime that fails half-way up is torn down too
        runtime.up()
        return runtime

    def defer(self, step: Callable[[], object]) -> None:
        """``step`` at teardown: after what is built later (the faults rolled back, the control API stopped), before
        what was built earlier (the runtime going down)."""
        self._teardown.callback(step)

    def arm(
        self,
        profile: Profile,
        rng: random.Random,
        *,
        load: LoadControl | None = None,
        base_users: int = 0,
        quiet: bool = False,
    ) -> FaultInjector:
        """The fault injector, then (when the stack serves) the controller and its control API. ``quiet``: its link
        faults are pushed quiet (chaos.faults.injector)."""
        if self.runtime is None or self.journal is None or self.run_dir is None:
            raise RuntimeError("power the stack up first")
        self.injector = FaultInjector(
            self.runtime, self.journal, rng, profile=profile, load=load, base_users=base_users, quiet=quiet
        )
        self._teardown.callback(self._disarm)
        if self.serve:
            runner = self.lend_run if self.runs else None
            self.controller = Controller(
                self.runtime, self.injector, self.journal, self.bus, self.runs_root, runner=runner
            )
            self.server = ControlServer(self.controller, self.runs_root, self.run_dir, self.room_bind)
            self.server.start()
            if not self.server.published:  # `up` (or another run) serves from this runs folder: its file stays
                print(
                    f"note: another stack's control API serves from {self.runs_root}; this one's is at "
                    f"{self.server.url}",
                    file=sys.stderr,
                )
        return self.injector

    # -- tearing down, in reverse ------------------------------------------------------------------
    def close(self) -> list[dict[str, Any]]:
        """Tear everything down (again: a no-op); the rollbacks it made."""
        with uninterruptible():
            self._teardown.close()
        return self.rollbacks

    def _disarm(self) -> None:
        """A run on the stack ends and the controller's timers stop, then every fault is rolled back, the injector
        stops renewing leases, and the control API stops last (it answers `status` while the rollbacks run)."""
        with ExitStack() as steps:  # the last pushed runs first; each runs even when one before it fails
            if self.server is not None:
                steps.callback(self.server.stop)
            if self.injector is not None:
                steps.callback(self.injector.close)
                steps.callback(self._roll_back, self.injector)
            if self.controller is not None:
                steps.callback(self.controller.close)

    def _roll_back(self, injector: FaultInjector) -> None:
        self.rollbacks = injector.revert_all()

    # -- lending -----------------------------------------------------------------------------------
    def lend_run(
        self,
        scenario: str | Path,
        profile: Path | None,
        seed: int | None,
        users: int | None,
        stop: threading.Event,
        runs_root: Path,
        quiet: bool = False,
        extension: Extension | None = None,
    ) -> dict[str, Any]:
        """A scenario run on this stack (POST /runs, a workshop exercise), its folder under ``runs_root``: its
        outcome, as the control API shows it. ``quiet``: an exercise's round (chaos.engine.run.RunOptions)."""
        assert self.runtime is not None, "the stack is not up"
        opts = RunOptions(
            scenario=scenario,
            profile=profile or DEFAULT_PROFILE,
            seed=seed,
            users=users,
            runs_root=runs_root,
            runtime=self.runtime,
            bus=self.bus,
            stop=stop,
            quiet=quiet,
            extension=extension or Extension(),
            on_armed=self.controller.attach if self.controller is not None else None,
        )
        result = run_scenario(opts, Console(quiet=True))
        return {"run_dir": str(result.run_dir), "deviated": result.deviated, "reasons": result.reasons}


def run_scenario(opts: RunOptions, console: Console | None = None) -> RunResult:
    """Run a scenario on a stack of its own (or a borrowed one: ``opts.runtime``), built and torn down here."""
    stack = Stack(opts.runs_root, runtime=opts.runtime, bus=opts.bus, serve=opts.serve)
    return run_on(stack, opts, console)
