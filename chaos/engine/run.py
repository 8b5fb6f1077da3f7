"""Running a scenario: start the stack and the load, check the steady state, walk the timeline, always roll back.

The hypothesis is checked before the first fault, at every tick while faults are active, after the last
fault is removed (how long until it held again) and at the end. Every run leaves ``journal.json`` (Chaos
Toolkit's shape) and its verdict: deviated (exit 1) or held (exit 0). Rollbacks run whatever happens.
The stack a run runs on is built and torn down by chaos.stack.Stack (``chaos.stack.run_scenario``).
"""

from __future__ import annotations

import random
import shutil
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml
from rich.console import Console

from chaos.audit.engine import audit_after_run, reconcile_quietly
from chaos.calibration import sized_users
from chaos.console import terminal
from chaos.engine.extension import Extension
from chaos.engine.fit import topology_for, validate
from chaos.engine.plan import make_plan
from chaos.engine.scenario import load_scenario, scenario_path
from chaos.engine.toolkit_journal import JournalDoc
from chaos.engine.verdict import Verdict, judge, recovery_text
from chaos.engine.walk import Walk
from chaos.events import EventBus
from chaos.faults.handlers import LoadControl
from chaos.faults.injector import FaultInjector
from chaos.journal import EventName, Journal, new_run_dir
from chaos.loadgen import LoadGenerator, load_limit
from chaos.observability.live import observe_run
from chaos.report import build_summary, write_summary
from chaos.report_render import render_summary
from chaos.rundir import PROFILE_FILE, SCENARIO_FILE, TOPOLOGY_FILE
from chaos.runtime.base import Runtime
from chaos.runtime.choice import RuntimeChoice, capabilities_of
from chaos.topology import Topology, load_topology
from services.common.errors import BlackoutError
from services.common.policy import Profile, load_profile

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PROFILE = PROJECT_ROOT / "profiles" / "naive.yaml"


class RunStack(Protocol):
    """What a run needs of the stack it runs on (chaos.stack.Stack builds it): the run names the run directory and
    the topology; the stack builds the journal, the runtime and the injector, and tears them down."""

    def open(self, run_dir: Path) -> Journal: ...

    def power_up(self, topology: Topology, profile: Path) -> Runtime: ...

    def defer(self, step: Callable[[], object]) -> None: ...

    def arm(
        self,
        profile: Profile,
        rng: random.Random,
        *,
        load: LoadControl | None = None,
        base_users: int = 0,
        quiet: bool = False,
    ) -> FaultInjector: ...

    def close(self) -> list[dict[str, Any]]: ...


@dataclass
class RunOptions:
    scenario: str | Path = "dc-power-loss"
    profile: Path = DEFAULT_PROFILE
    topology: Path | None = None  # None: the topology the profile names
    seed: int | None = None  # None: a fresh one, recorded in the journal
    users: int | None = None  # None: the scenario's
    think_s: tuple[float, float] | None = None  # None: the scenario's (else the demo's pace)
    runs_root: Path = Path("runs")
    any_ports: bool = False  # bind free ports (tests run beside a live demo)
    runtime: RuntimeChoice = "local"  # a kind to start, or a stack that is up to borrow (chaos.runtime.choice)
    serve: bool = False  # serve the control API while the run lasts (`blackout run`)
    # told the run's injector once armed (a lent stack's controller: its levers act on the run); returns the undo,
    # called as the run's teardown begins, before its rollbacks
    on_armed: Callable[[FaultInjector], Callable[[], None]] | None = None
    bus: EventBus = field(default_factory=EventBus)
    observe: bool = True  # controller gauges, a real Prometheus when installed, the post-mortem at the end
    prometheus_port: int = 9090  # 0: any free port (tests)
    stop: threading.Event = field(default_factory=threading.Event)  # set: end the run early (rollbacks run)
    quiet: bool = False  # a hidden-fault exercise's round: its link faults are pushed quiet (FaultInjector)
    extension: Extension = field(default_factory=Extension)  # extend() while it runs: the run ends later


@dataclass
class RunResult:
    run_dir: Path
    deviated: bool
    reasons: list[str]


def run_on(stack: RunStack, opts: RunOptions, console: Console | None = None) -> RunResult:
    console = console or terminal()
    # Validate everything before starting anything.
    source = scenario_path(opts.scenario)
    scenario = load_scenario(source)
    profile = load_profile(opts.profile)
    topology = load_topology(opts.topology or topology_for(profile))
    validate(scenario, topology, str(source), capabilities_of(opts.runtime))
    plan = make_plan(scenario.steps())
    if opts.any_ports:
        topology = topology.with_any_ports()
    seed = opts.seed if opts.seed is not None else random.SystemRandom().randrange(2**31)
    think_s = opts.think_s or scenario.load.think_s
    users = (
        opts.users
        or scenario.load.users
        or sized_users(scenario.load.capacity, opts.runs_root, think_s, scenario.load.of)
    )

    run_dir = new_run_dir(opts.runs_root, f"{scenario.name}-{profile.name}")
    shutil.copy(opts.profile, run_dir / PROFILE_FILE)
    (run_dir / SCENARIO_FILE).write_text(yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False))
    journal = stack.open(run_dir)
    doc = JournalDoc(run_dir, scenario, profile.name, seed)
    journal.record(
        EventName.START,
        scenario=scenario.name,
        profile=profile.name,
        topology=topology.name,
        seed=seed,
        users=users,
        think_s=think_s,
        duration_s=scenario.duration,
    )
    console.print(
        f"[bold]Blackout[/] {scenario.title} | profile {profile.name} | topology {topology.name} | seed {seed}"
    )
    console.print(f"run directory: {run_dir}")

    load: LoadGenerator | None = None
    observing = ExitStack()
    walking = False
    findings: list[str] = []  # the walk's, the run's, the audit's: chaos/engine/verdict.py judges

    def unload(runtime: Runtime) -> None:
        """After the rollbacks, before the stack goes down: the users leave, then the data audit reconciles while
        the stack is still up (it audits the stack's files once it is down)."""
        if load is not None:
            load.stop()
        if walking:
            reconcile_quietly(runtime, journal, console)

    try:
        with console.status("starting the services..."):
            started = time.monotonic()
            runtime = stack.power_up(topology, run_dir / PROFILE_FILE)
        stack.defer(lambda: unload(runtime))
        (run_dir / TOPOLOGY_FILE).write_text(runtime.topology.model_dump_json(indent=2))
        console.print(f"{len(runtime.topology.instances())} services healthy in {time.monotonic() - started:.1f}s")
        if opts.observe:
            observing.enter_context(
                observe_run(
                    runtime.topology,
                    run_dir,
                    opts.bus,
                    port=opts.prometheus_port,
                    say=console.print,
                    quiet=opts.quiet,
                )
            )
        limit = load_limit(users, scenario.load.spawn_rate, scenario.duration)
        load = LoadGenerator(
            run_dir,
            runtime.topology.gateways(),
            users,
            max_seconds=limit,
            edge_failover=profile.edge_failover,
            client_attempts=profile.client_attempts,
            spawn_rate=scenario.load.spawn_rate,
            seed=seed,
            think_s=think_s,
        )
        users_load = load

        def extended(extra: float) -> None:
            # locust stops itself at its limit: an extension moves that too (the file it follows every second)
            users_load.set_load(max_seconds=limit + extra)

        opts.extension.on_extend(extended)
        extended(opts.extension.seconds)  # one made while the services started
        injector = stack.arm(profile, random.Random(seed), load=load, base_users=users, quiet=opts.quiet)
        if opts.on_armed is not None:
            stack.defer(opts.on_armed(injector))
        with console.status(f"starting {users} users..."):
            journal.record(EventName.LOAD_START, users=users, pid=load.start())
            logged_in, expected = load.wait_logged_in()
        if logged_in < expected:
            console.print(f"[yellow]only {logged_in} of {expected} accounts logged in before the experiment[/]")
        walking = True
        findings += Walk(
            scenario, plan, runtime, injector, journal, doc, console, opts.stop, run_dir, load.running, opts.extension
        ).run()
        journal.record(EventName.END)
        doc.status = "completed" if doc.load_stopped_at is None else "load-stopped"
    except KeyboardInterrupt:
        doc.status = "interrupted"
        journal.record(EventName.ABORTED, reason="KeyboardInterrupt")
        raise
    except Exception as exc:
        doc.status = "aborted"
        findings.append(f"aborted: {type(exc).__name__}: {exc}")
        journal.record(EventName.ABORTED, reason=type(exc).__name__, detail=str(exc)[:500])
        if not walking:
            raise  # it never started: the real cause is the message
    finally:
        with console.status("rolling back every fault and tearing down..."):
            doc.rollbacks = stack.close()
        if walking:
            findings += audit_after_run(run_dir, console)
        verdict = judge(doc.evidence(), findings)
        doc.write(verdict)
        observing.close()  # the post-mortem reads the finished run directory
    return _finish(run_dir, doc, verdict, console)


def _finish(run_dir: Path, doc: JournalDoc, verdict: Verdict, console: Console) -> RunResult:
    try:
        summary = build_summary(run_dir)
        write_summary(summary, run_dir)
        render_summary(summary, console)
    except BlackoutError as exc:  # e.g. no request finished: the verdict still stands
        console.print(f"[yellow]no per-phase summary: {exc}[/]")
    if doc.load_stopped_at is not None:
        held = f"[yellow bold]NO VERDICT[/] (load stopped at {doc.load_stopped_at:g}s)"
    else:
        held = "[red bold]DEVIATED[/]" if verdict.deviated else "[green bold]HELD[/]"
    console.print(f"steady-state hypothesis: {held}")
    for reason in verdict.reasons:
        console.print(f"  - {reason}")
    if doc.recovery is not None:
        console.print(f"  recovery: {recovery_text(doc.recovery)}")
    console.print(f"everything is in {run_dir} (journal.json has the verdict)")
    return RunResult(run_dir, verdict.deviated, list(verdict.reasons))
