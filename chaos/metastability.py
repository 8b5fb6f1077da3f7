"""`blackout metastability`: where the stack comes back after a trigger, and where it stays down.

Huang et al. (OSDI 2022, "Metastable Failures in the Wild"): the same trigger is recovered from or not
depending on its size, its duration and the load. This sweeps a scenario's trigger (its first timeline
action, retry-storm's auth stall by default) over durations, and the load over fractions of the calibrated
capacity, on one stack per profile kept up across cells. Each cell: the load is steady (the scenario's
hypothesis holds over a window), the trigger is applied for its duration and removed, then the hypothesis is
checked every 2 s over the requests started after the removal; the cell is **recovered** (with how long it
took) when a check holds within ``observe_s``, **stuck** when none does. A stuck stack is reset before the
next cell (users to 0 until requests stop, then the users again); a cell whose load is not steady before the
trigger is **unsteady** (the load alone is too much: no trigger needed).
"""

from __future__ import annotations

import csv
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from chaos.calibration import Calibration
from chaos.engine.hypothesis import Check, Steady, check, finished_between, steady_counts
from chaos.engine.recovery import Recovery
from chaos.engine.scenario import Hypothesis, Scenario
from chaos.faults.actions import parse_action
from chaos.faults.injector import FaultInjector
from chaos.faults.model import ActionBase
from chaos.journal import EventName, Journal
from chaos.loadgen import LoadGenerator
from chaos.rundir import REQUESTS_FILE
from chaos.runtime.local import LocalRuntime
from chaos.topology import load_topology
from loadtest.control import DEMO_THINK_S
from loadtest.requests_reader import RequestRow, RequestsReader
from services.common.errors import UsageError
from services.common.policy import load_profile

CHECK_EVERY_S = 2.0  # as a run checks its hypothesis
STEADY_WITHIN_S = 45.0  # after the users are all in, the hypothesis must hold within this, else "unsteady"
# A reset waits until no request finished for this long (longer than a naive login's 3 x 3 attempts at 1 s
# each: an in-flight login still costs auth its hashing)...
DRAIN_QUIET_S = 10.0
DRAIN_WITHIN_S = 60.0  # ...at most this long
LOGIN_WITHIN_S = 60.0
TOPOLOGIES = Path(__file__).resolve().parents[1] / "topologies"

RECOVERED, STUCK, UNSTEADY = "recovered", "stuck", "unsteady"


@dataclass(frozen=True)
class Cell:
    profile: str
    trigger_s: float
    load_fraction: float
    users: int
    repeat: int
    verdict: str  # recovered | stuck | unsteady
    recovered_after_s: float | None  # since the trigger was removed
    observed_s: float  # how long after the removal the cell was watched
    lowest_success: float | None  # the worst success rate of the checks after the removal


def classify(checks: list[tuple[float, bool | None]], removed_at: float, observe_s: float) -> tuple[str, float | None]:
    """``checks``: (time, held) after the trigger was removed. Recovered (after how many seconds) when the checks
    held again within ``observe_s`` and did not relapse after (chaos/engine/recovery.py, as a run judges it);
    else stuck (a check without data never counts as held)."""
    recovery = Recovery(removed_at)
    for t, met in sorted(checks):
        recovery.see(t, met)
    after = recovery.after_s
    return (RECOVERED, after) if after is not None and after <= observe_s else (STUCK, None)


class Recent:
    """The requests users finished lately, read from the run's requests file from where it was."""

    def __init__(self, run_dir: Path, keep_s: float) -> None:
        self.reader = RequestsReader(run_dir / REQUESTS_FILE)
        self.rows: list[RequestRow] = []
        self.keep_s = keep_s

    def read(self, now: float) -> list[RequestRow]:
        self.rows = [r for r in self.rows + self.reader.read_new() if r.finished >= now - self.keep_s]
        return self.rows


class Sweep:
    """One profile's load and injector (on its stack), kept up across the cells."""

    def __init__(
        self,
        load: LoadGenerator,
        injector: FaultInjector,
        hypothesis: Hypothesis,
        recent: Recent,
        spawn_rate: float,
        say: Callable[[str], None],
    ) -> None:
        self.load, self.injector, self.hyp = load, injector, hypothesis
        self.recent, self.spawn_rate, self.say = recent, spawn_rate, say

    def check(
        self,
        now: float,
        window: tuple[float, float],
        started_after: float = 0.0,
        steady: dict[str, Steady] | None = None,
    ) -> Check:
        rows = finished_between(self.recent.read(now), *window, started_after=started_after)
        return check(self.hyp, rows, now, "sweep", window, steady)

    def steady(self, users: int) -> Check | None:
        """Users at ``users`` (a ramp at the spawn rate), then the hypothesis held over a whole window."""
        ramp = abs(users - self.load.users) / self.spawn_rate
        self.load.set_load(users=users)
        ramped = time.time() + ramp
        deadline = ramped + STEADY_WITHIN_S
        while time.time() < deadline:
            time.sleep(CHECK_EVERY_S)  # the check cadence of a run
            now = time.time()
            if now < ramped + self.hyp.window:
                continue
            result = self.check(now, (now - self.hyp.window, now))
            if result.met:
                return result
        return None

    def reset(self) -> None:
        """Users to 0 until no request finishes (every session gone, queues drained)."""
        self.load.set_load(users=0)
        deadline = time.time() + DRAIN_WITHIN_S
        last_finished = time.time()
        while time.time() < deadline:
            time.sleep(0.5)  # poll interval
            now = time.time()
            rows = self.recent.read(now)
            last_finished = max([last_finished] + [r.finished for r in rows])
            if now - last_finished >= DRAIN_QUIET_S:
                return

    def cell(
        self,
        profile: str,
        trigger: ActionBase,
        trigger_s: float,
        fraction: float,
        users: int,
        repeat: int,
        observe_s: float,
    ) -> Cell:
        before = self.steady(users)
        if before is None:
            self.reset()  # a stack that is down from the load alone: start it over once
            before = self.steady(users)
        if before is None:
            self.reset()
            unsteady = Cell(profile, trigger_s, fraction, users, repeat, UNSTEADY, None, 0.0, None)
            self.injector.journal.record(EventName.CELL, **asdict(unsteady))
            self.say(f"  {profile} trigger {trigger_s:g}s at {fraction:g}x capacity ({users} users): {UNSTEADY}")
            return unsteady
        baseline = steady_counts(before)
        fault_id, _ = self.injector.apply(trigger)
        time.sleep(trigger_s)  # the trigger's length, the variable swept (not a wait for readiness)
        self.injector.revert(fault_id or "")
        removed = time.time()
        checks: list[Check] = []
        while time.time() - removed < observe_s:
            time.sleep(CHECK_EVERY_S)
            now = time.time()
            checks.append(
                self.check(now, (max(removed, now - self.hyp.window), now), started_after=removed, steady=baseline)
            )
            if checks[-1].recovered:
                break  # recovered: nothing more to learn from this cell
        verdict, after = classify([(c.t, c.recovered) for c in checks], removed, observe_s)
        rates_seen = [p.value for c in checks for p in c.probes if p.value is not None and c.met is not None]
        cell = Cell(
            profile,
            trigger_s,
            fraction,
            users,
            repeat,
            verdict,
            after,
            round(time.time() - removed, 1),
            round(min(rates_seen), 3) if rates_seen else None,
        )
        if verdict == STUCK:
            self.reset()
        self.injector.journal.record(
            EventName.CELL, **asdict(cell), removed_at=removed, checks=[c.to_data() for c in checks]
        )  # the numbers behind the map
        self.say(
            f"  {profile} trigger {trigger_s:g}s at {fraction:g}x capacity ({users} users): {verdict}"
            + (f" after {after:g}s" if after is not None else "")
        )
        return cell


def trigger_of(scenario: Scenario) -> dict[str, Any]:
    """The scenario's first timeline step as an action without its offset and duration (the sweep sets it)."""
    step = dict(scenario.timeline[0])
    step.pop("at", None)
    step.pop("for", None)
    return step


def sweep_profile(
    profile_path: Path,
    scenario: Scenario,
    calibration: Calibration,
    durations: list[float],
    fractions: list[float],
    repeats: int,
    out_dir: Path,
    observe_s: float,
    seed: int = 7,
    say: Callable[[str], None] = print,
) -> list[Cell]:
    """Every cell on one stack with ``profile_path``, started on free ports and always torn down."""
    policy = load_profile(profile_path)
    run_dir = out_dir / policy.name
    run_dir.mkdir(parents=True, exist_ok=True)
    journal = Journal(run_dir)
    topology = load_topology(TOPOLOGIES / f"{policy.topology}.yaml").with_any_ports()
    runtime = LocalRuntime(topology, run_dir, profile=profile_path, journal=journal)
    think = scenario.load.think_s or DEMO_THINK_S
    spawn_rate = scenario.load.spawn_rate or 5.0
    plan = [(f, calibration.users_for(f, think), d, r) for f in fractions for d in durations for r in range(repeats)]
    seconds = len(plan) * (max(durations) + observe_s + STEADY_WITHIN_S) + 600
    load: LoadGenerator | None = None
    injector: FaultInjector | None = None
    cells: list[Cell] = []
    try:
        runtime.up()
        load = LoadGenerator(
            run_dir,
            runtime.topology.gateways(),
            plan[0][1],
            max_seconds=seconds,
            edge_failover=policy.edge_failover,
            client_attempts=policy.client_attempts,
            spawn_rate=spawn_rate,
            seed=seed,
            think_s=think,
        )
        injector = FaultInjector(
            runtime, journal, random.Random(seed), profile=policy, load=load, base_users=plan[0][1]
        )
        load.start()
        load.wait_logged_in(timeout_s=LOGIN_WITHIN_S)
        sweep = Sweep(
            load, injector, scenario.hypothesis, Recent(run_dir, 2 * scenario.hypothesis.window), spawn_rate, say
        )
        trigger = trigger_of(scenario)
        for fraction, users, duration, repeat in plan:
            action = parse_action(trigger, scenario.name, "timeline.0")
            cells.append(sweep.cell(policy.name, action, duration, fraction, users, repeat, observe_s))
    finally:
        if injector is not None:
            injector.revert_all()
            injector.close()
        if load is not None:
            load.stop()
        runtime.down()
    return cells


def write_csv(cells: list[Cell], path: Path) -> None:
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=[f.name for f in fields(Cell)])
        writer.writeheader()
        for cell in cells:
            writer.writerow(asdict(cell))


def draw(cells: list[Cell], path: Path, title: str) -> None:
    """The map: per profile, trigger duration (x) by load (y); green recovered (seconds shown), red stuck."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    profiles = list(dict.fromkeys(c.profile for c in cells))
    if not profiles:
        raise UsageError("no cells to draw")
    durations = sorted({c.trigger_s for c in cells})
    fractions = sorted({c.load_fraction for c in cells})
    colors = {RECOVERED: "#4caf50", STUCK: "#e53935", UNSTEADY: "#9e9e9e"}
    figure, axes = plt.subplots(1, len(profiles), figsize=(4.5 * len(profiles), 4), squeeze=False)
    for ax, profile in zip(axes[0], profiles, strict=True):
        for x, duration in enumerate(durations):
            for y, fraction in enumerate(fractions):
                here = [
                    c for c in cells if c.profile == profile and c.trigger_s == duration and c.load_fraction == fraction
                ]
                if not here:
                    continue
                stuck = sum(c.verdict == STUCK for c in here)
                worst = STUCK if stuck else UNSTEADY if any(c.verdict == UNSTEADY for c in here) else RECOVERED
                ax.add_patch(plt.Rectangle((x - 0.5, y - 0.5), 1, 1, color=colors[worst]))
                afters = [c.recovered_after_s for c in here if c.recovered_after_s is not None]
                label = {STUCK: f"stuck\n{stuck}/{len(here)}", UNSTEADY: "down\nbefore"}.get(
                    worst, f"{max(afters):g} s" if afters else ""
                )
                ax.text(x, y, label, ha="center", va="center", fontsize=9, color="white")
        ax.set_xlim(-0.5, len(durations) - 0.5)
        ax.set_ylim(-0.5, len(fractions) - 0.5)
        ax.set_xticks(range(len(durations)), [f"{d:g} s" for d in durations])
        ax.set_yticks(range(len(fractions)), [f"{f:g}x" for f in fractions])
        ax.set_xlabel("trigger duration")
        ax.set_ylabel("load (fraction of calibrated capacity)")
        ax.set_title(profile)
    figure.legend(
        handles=[Patch(color=colors[k], label=k) for k in (RECOVERED, STUCK, UNSTEADY)],
        loc="lower center",
        ncol=3,
        frameon=False,
    )
    figure.suptitle(title, fontsize=10)
    figure.tight_layout(rect=(0, 0.08, 1, 0.95))
    figure.savefig(path, dpi=110)
    plt.close(figure)
