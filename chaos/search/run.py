"""`blackout search`: start the profile's stack, search every chosen user action from every home data center,
replay each minimal cut set live, write the report; the stack is torn down whatever happens."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from chaos.engine.fit import topology_for
from chaos.interrupts import uninterruptible
from chaos.journal import Journal, new_run_dir
from chaos.rundir import PROFILE_FILE
from chaos.runtime.local import LocalRuntime
from chaos.search import report
from chaos.search.atoms import atoms, cuts
from chaos.search.engine import Search, SearchResult
from chaos.search.oracle import ACTIONS, Entry, Oracle, Outcome
from chaos.search.pruning import FaultSet
from chaos.search.replay import Replay, replay, scenario, write_scenario
from chaos.topology import Topology, load_topology
from services.common.policy import Profile, load_profile

PARALLEL = 8  # experiments in flight at once: most of an experiment is waiting on a timeout, not CPU


@dataclass
class SearchOptions:
    profile: Path
    actions: tuple[str, ...] = ("feed",)
    max_faults: int = 1
    budget_s: float = 600.0
    seed: int = 0
    runs_root: Path = Path("runs")
    replay: bool = True
    any_ports: bool = False  # bind free ports (tests beside a live demo)
    parallel: int = PARALLEL


@dataclass
class SearchRun:
    out_dir: Path
    results: list[SearchResult]
    replays: list[Replay] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


def run_search(opts: SearchOptions, console: Console) -> SearchRun:
    for action in opts.actions:
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; actions: {', '.join(ACTIONS)}")
    profile = load_profile(opts.profile)
    topology = load_topology(topology_for(profile))
    if opts.any_ports:
        topology = topology.with_any_ports()
    out_dir = new_run_dir(opts.runs_root, f"search-{profile.name}")
    (out_dir / PROFILE_FILE).write_bytes(opts.profile.read_bytes())
    runtime = LocalRuntime(topology, out_dir, profile=out_dir / PROFILE_FILE, journal=Journal(out_dir))
    started = time.monotonic()
    try:
        with console.status("starting the services..."):
            runtime.up()
        live = runtime.topology
        results = asyncio.run(_search_all(live, profile, runtime.admin_secret, opts, console))
        search_s = time.monotonic() - started
        replays = _replays(results, live, profile, out_dir)
        if opts.replay:
            for n, item in enumerate(replays, start=1):
                with console.status(f"replaying cut set {n} of {len(replays)} live..."):
                    replay(item, runtime, out_dir / PROFILE_FILE, opts.seed, out_dir / "replays")
                console.print(f"replay {' + '.join(report.names(item.cut))}: confirmed={item.confirmed}")
    finally:
        with uninterruptible():
            runtime.down()
    meta = {
        "profile": profile.name,
        "max_faults": opts.max_faults,
        "seed": opts.seed,
        "budget_s": opts.budget_s,
        "seconds": round(time.monotonic() - started, 1),
        "search_seconds": round(search_s, 1),
        "replay_seconds": round(time.monotonic() - started - search_s, 1),
    }
    data = report.to_data(results, replays, meta, live)
    report.write(out_dir, data, live)
    return SearchRun(out_dir, results, replays, data)


async def _search_all(
    topology: Topology, profile: Profile, admin_secret: str, opts: SearchOptions, console: Console
) -> list[SearchResult]:
    atom_cuts = {atom: cuts(atom, topology) for atom in atoms(topology)}
    entries = [Entry(action, dc) for action in opts.actions for dc in topology.gateways()]
    deadline = time.monotonic() + opts.budget_s
    results = []
    limits = httpx.Limits(max_connections=4 * opts.parallel, max_keepalive_connections=4 * opts.parallel)
    async with httpx.AsyncClient(limits=limits) as client:
        oracle = Oracle(topology, profile, admin_secret, client)
        await oracle.prepare()
        for n, entry in enumerate(entries):
            share = (deadline - time.monotonic()) / (len(entries) - n)  # an equal share of what is left

            async def experiment(chosen: FaultSet, entry: Entry = entry) -> Outcome:
                return await oracle.run(entry, chosen)

            search = Search(entry.label, experiment, atom_cuts, opts.max_faults, share, opts.seed, opts.parallel)
            result = await search.run()
            cut_text = "; ".join(" + ".join(report.names(c)) for c in result.minimal_broken) or "none"
            console.print(
                f"{entry.label}: {result.experiments} experiments of {result.brute_force} brute force in "
                f"{result.seconds:.1f}s; minimal cut sets: {cut_text}"
            )
            results.append(result)
    return results


def _replays(results: list[SearchResult], topology: Topology, profile: Profile, out_dir: Path) -> list[Replay]:
    """One replay per distinct minimal cut set (with every action it breaks), in the order found."""
    breaks: dict[FaultSet, list[Entry]] = {}
    for result in results:
        action, _, dc = result.label.partition(" @ ")
        for cut in result.minimal_broken:
            if cut:
                breaks.setdefault(cut, []).append(Entry(action, dc))
    items = []
    for n, (cut, entries) in enumerate(breaks.items(), start=1):
        path = write_scenario(out_dir / "scenarios" / f"cut-{n:02d}.yaml", scenario(cut, entries, topology, profile))
        items.append(Replay(cut, entries, path))
    return items
