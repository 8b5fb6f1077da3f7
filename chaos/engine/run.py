"""Running a scenario: start the stack and the load, check the steady state, walk the timeline, always roll back.

The hypothesis is checked before the first fault, at every tick while faults are active, after the last
fault is removed (how long until it held again) and at the end. Every run leaves ``journal.json`` (Chaos
Toolkit's shape) and its verdict: deviated (exit 1) or held (exit 0). Rollbacks run whatever happens.
"""

from __future__ import annotations

import random
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from rich.console import Console

from chaos.audit.engine import audit_after_run, reconcile_quietly
from chaos.calibration import sized_users
from chaos.console import terminal
from chaos.engine.fit import topology_for, validate
from chaos.engine.plan import make_plan
from chaos.engine.scenario import load_scenario, scenario_path
from chaos.engine.toolkit_journal import JournalDoc
from chaos.engine.verdict import Verdict, judge, recovery_text
from chaos.engine.walk import Walk
from chaos.events import EventBus
from chaos.faults.injector import FaultInjector
from chaos.journal import EventName, Journal, new_run_dir
from chaos.loadgen import LoadGenerator, load_limit
from chaos.observability.live import observe_run
from chaos.report import build_summary, write_summary
from chaos.report_render import render_summary
from chaos.rundir import PROFILE_FILE, SCENARIO_FILE, TOPOLOGY_FILE
from chaos.runtime.base import Runtime, RuntimeFactory
from chaos.runtime.borrowed import BorrowedRuntime
from chaos.runtime.local import LocalRuntime
from chaos.topology import Topology, load_topology
from services.common.errors import BlackoutError
from services.common.policy import load_profile

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PROFILE = PROJECT_ROOT / "profiles" / "naive.yaml"


def local_runtime(topology: Topology, run_dir: Path, profile: Path, journal: Journal) -> Runtime:
    return LocalRuntime(topology, run_dir, profile=profile, journal=journal)


def borrowed(runtime: Runtime) -> RuntimeFactory:
    """A factory lending a stack that is already up to a run (started from the control API). The run's journal
    names the stack's own run directory: its databases, profile copies and journal are the run's evidence."""

    def lend(topology: Topology, run_dir: Path, profile: Path, journal: Journal) -> Runtime:
        stack_dir = getattr(runtime, "run_dir", None)  # local and docker stacks keep their files there
        if stack_dir is not None:  # else the audit fails, naming what it could not find
            journal.record(EventName.BORROWED, stack_dir=str(Path(stack_dir).resolve()))
        return BorrowedRuntime(runtime, profile)

    return lend


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
    runtime_factory: RuntimeFactory = local_runtime
    # Called once the stack is up, with what a control server needs; returns a stop function.
    serve: Callable[[Runtime, FaultInjector, Path], Callable[[], None]] | None = None
    bus: EventBus = field(default_factory=EventBus)
    observe: bool = True  # controller gauges, a real Prometheus when installed, the post-mortem at the end
    prometheus_port: int = 9090  # 0: any free port (tests)
    stop: threading.Event = field(default_factory=threading.Event)  # set: end the run early (rollbacks run)
    quiet: bool = False  # a hidden-fault exercise's round: its link faults are pushed quiet (FaultInjector)


@dataclass
class RunResult:
    run_dir: Path
    deviated: bool
    reasons: list[str]


def run_scenario(opts: RunOptions, console: Console | None = None) -> RunResult:
    console = console or terminal()
    # Validate everything before starting anything.
    source = scenario_path(opts.scenario)
    scenario = load_scenario(source)
    profile = load_profile(opts.profile)
    topology = load_topology(opts.topology or topology_for(profile))
    validate(scenario, topology, str(source))
    plan = make_plan(scenario.steps())
    if opts.any_ports:
        topology = topology.with_any_ports()
    seed = opts.seed if opts.seed is not None else random.SystemRandom().randrange(2**31)
    think_s = opts.think_s or scenario.load.think_s
    users = opts.users or scenario.load.users or sized_users(scenario.load.capacity, opts.runs_root, think_s)

    run_dir = new_run_dir(opts.runs_root, f"{scenario.name}-{profile.name}")
    shutil.copy(opts.profile, run_dir / PROFILE_FILE)
    (run_dir / SCENARIO_FILE).write_text(yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False))
    journal = Journal(run_dir, opts.bus)
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

    runtime = opts.runtime_factory(topology, run_dir, run_dir / PROFILE_FILE, journal)
    load: LoadGenerator | None = None
    injector: FaultInjector | None = None
    stop_serving: Callable[[], None] | None = None
    observing = ExitStack()
    walking = False
    findings: list[str] = []  # the walk's, the run's, the audit's: chaos/engine/verdict.py judges
    try:
        with console.status("starting the services..."):
            started = time.monotonic()
            runtime.up()
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
        injector = FaultInjector(
            runtime, journal, random.Random(seed), profile=profile, load=load, base_users=users, quiet=opts.quiet
        )
        if opts.serve is not None:
            stop_serving = opts.serve(runtime, injector, run_dir)
        with console.status(f"starting {users} users..."):
            journal.record(EventName.LOAD_START, users=users, pid=load.start())
            load.wait_logged_in()
        walking = True
        findings += Walk(
            scenario, plan, runtime, injector, journal, doc, console, opts.stop, run_dir, load.running
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
        with uninterruptible(), console.status("rolling back every fault and tearing down..."):
            if injector is not None:
                doc.rollbacks = injector.revert_all()
                injector.close()
            if stop_serving is not None:
                stop_serving()
            if load is not None:
                load.stop()
            if walking:  # the data audit: reconcile while the stack is up, audit its files once it is down
                reconcile_quietly(runtime, journal, console)
            runtime.down()
        if walking:
            findings += audit_after_run(run_dir, console)
        verdict = judge(doc.evidence(), findings)
        doc.write(verdict)
        observing.close()  # the post-mortem reads the finished run directory
    return _finish(run_dir, doc, verdict, console)


@contextmanager
def uninterruptible() -> Iterator[None]:
    """Rollbacks always run: a second Ctrl-C or a SIGTERM during them waits until they are done."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


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
