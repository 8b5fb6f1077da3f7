"""`blackout outage`: steady load, then a data center loses power, then it comes back. Then the numbers.

baseline -> power off -> outage -> power on -> recovery. The run directory holds everything: the journal,
what users saw (requests.csv), every write and its outcome (writes.csv), logs, and the summary.
"""
from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from chaos.amplification import scrape
from chaos.journal import Journal, new_run_dir
from chaos.loadgen import LoadGenerator, read_rows, window_stats
from chaos.report import build_summary, render_summary, write_summary
from chaos.runtime.local import LocalRuntime
from chaos.topology import Topology, load_topology
from services.common.policy import Profile, load_profile

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TOPOLOGIES = PROJECT_ROOT / "topologies"
DEFAULT_PROFILE = PROJECT_ROOT / "profiles" / "naive.yaml"
TICK_S = 5.0


@dataclass
class OutageOptions:
    topology: Path | None = None  # None: the topology the profile names
    profile: Path = DEFAULT_PROFILE
    dc: str = "dc-east"
    baseline_s: float = 20.0
    outage_s: float = 30.0
    recovery_s: float = 30.0
    users: int = 20
    runs_root: Path = Path("runs")
    port_allocator: Callable[[], int] | None = None  # tests: gives free ports


def topology_for(profile: Profile) -> Path:
    return TOPOLOGIES / f"{profile.topology}.yaml"


def run_outage(opts: OutageOptions, console: Console | None = None) -> Path:
    console = console or Console()
    profile = load_profile(opts.profile)  # validate before starting anything
    topology: Topology = load_topology(opts.topology or topology_for(profile))
    topology.require_dc(opts.dc)
    if opts.port_allocator is not None:
        topology = topology.with_ports(opts.port_allocator)
    run_dir = new_run_dir(opts.runs_root, f"power-loss-{profile.name}")
    shutil.copy(opts.profile, run_dir / "profile.yaml")
    (run_dir / "topology.yaml").write_text(topology.model_dump_json(indent=2))
    journal = Journal(run_dir)
    journal.record(
        "start", scenario="power-loss", dc=opts.dc, profile=profile.name, topology=topology.name,
        baseline_s=opts.baseline_s, outage_s=opts.outage_s, recovery_s=opts.recovery_s, users=opts.users,
    )  # fmt: skip
    console.print(f"[bold]Blackout[/] power loss of {opts.dc} | topology {topology.name} | profile {profile.name}")
    console.print(f"run directory: {run_dir}")
    total = opts.baseline_s + opts.outage_s + opts.recovery_s
    load = LoadGenerator(run_dir, topology.gateways(), opts.users, max_seconds=total + 120,
                         edge_failover=profile.edge_failover, client_attempts=profile.client_attempts)
    runtime = LocalRuntime(topology, run_dir, profile=run_dir / "profile.yaml", journal=journal)
    try:
        with console.status("starting the services..."):
            started = time.monotonic()
            runtime.up()
        console.print(f"{len(topology.instances())} services healthy in {time.monotonic() - started:.1f}s")
        with console.status(f"starting {opts.users} users..."):
            journal.record("load-start", users=opts.users, pid=load.start())
            load.wait_logged_in(timeout_s=60)
        _snapshot(journal, runtime, "baseline")
        _phase(console, journal, run_dir, "baseline", opts.baseline_s)
        # Each phase starts at the power event itself: requests after this mark belong to it.
        _snapshot(journal, runtime, "outage")
        journal.record("phase", phase="outage")
        event = runtime.power_off(opts.dc)
        console.print(f"[red bold]POWER OFF {opts.dc}[/]: {len(event.instances)} processes killed in {event.seconds * 1000:.0f} ms")
        _phase(console, journal, run_dir, "outage", opts.outage_s, mark=False)
        _snapshot(journal, runtime, "recovery")
        journal.record("phase", phase="recovery")
        with console.status(f"restoring power to {opts.dc}..."):
            event = runtime.power_on(opts.dc)
        console.print(f"[green bold]POWER ON {opts.dc}[/]: healthy again in {event.seconds:.1f}s")
        _phase(console, journal, run_dir, "recovery", opts.recovery_s, mark=False)
        _snapshot(journal, runtime, "end")
        journal.record("end")
    except BaseException as exc:
        journal.record("aborted", reason=type(exc).__name__)
        raise
    finally:
        with console.status("tearing down..."):
            load.stop()
            runtime.down()
    summary = build_summary(run_dir)
    write_summary(summary, run_dir)
    render_summary(summary, console)
    console.print(f"everything is in {run_dir}")
    return run_dir


def _snapshot(journal: Journal, runtime: LocalRuntime, phase: str) -> None:
    """Every running instance's counters as the phase starts: the journal keeps them for the report."""
    running = {
        name: (info["dc"], runtime.topology.url(name))
        for name, info in runtime.status().items() if info["state"] == "running"
    }  # fmt: skip
    journal.record("metrics", phase=phase, instances=scrape(running))


def _phase(console: Console, journal: Journal, run_dir: Path, name: str, seconds: float, mark: bool = True) -> None:
    """Hold a phase for its duration, printing what users see every few seconds."""
    if mark:
        journal.record("phase", phase=name)
    console.print(f"[bold]{name}[/] for {seconds:g}s")
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        window_start = time.time()
        time.sleep(min(TICK_S, left))
        stats = window_stats(read_rows(run_dir, finished_since=window_start))
        line = "  ".join(f"{dc} feed ok {ok}/{n}" for dc, (n, ok) in sorted(stats.items())) or "no feed requests"
        console.print(f"  {name:>8} {seconds - max(0.0, end - time.monotonic()):5.0f}s  {line}")
