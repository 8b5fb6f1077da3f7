"""Benchmark: the same power loss under the naive and the resilient profile, checked against the goals.

Runs the dc-power-loss scenario twice on local processes (about 3 minutes), prints every figure next to
its goal, and exits 1 if a goal was missed. Run: `make bench` or
    .venv/bin/python benchmarks/outage_contrast.py [--scenario dc-power-loss --users 20 --seed N]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from chaos.console import terminal
from chaos.engine.run import RunOptions
from chaos.journal import Journal
from chaos.report import build_summary
from chaos.report_model import PhaseSummary, RunSummary
from chaos.rundir import REQUESTS_FILE
from chaos.stack import run_scenario
from loadtest.requests_reader import read_all

PROJECT = Path(__file__).resolve().parents[1]


@dataclass
class Goal:
    run: str
    figure: str
    value: float | None
    goal: str
    met: bool


def _phase(summary: RunSummary, name: str) -> PhaseSummary:
    found = summary.phase(name)
    if found is None:  # a run that ended early: no figure to check
        raise SystemExit(f"run {summary.run} has no {name} phase (see its journal)")
    return found


def recovery_seconds(run_dir: Path, summary: RunSummary) -> float:
    """From power-on until the last user request started after it that failed or was slow (> 3x baseline p99)."""
    events = Journal(run_dir).read()
    start = next(e["t"] for e in events if e.get("phase") == "recovery")
    end = next(e["t"] for e in events if e["event"] == "end")
    slow_ms = 3 * (_phase(summary, "baseline").actions["feed"].p99_ms or 0)
    last_bad = start
    for row in read_all(run_dir / REQUESTS_FILE):
        if start <= row.t < end and (not row.ok or (row.action == "feed" and row.latency_ms > slow_ms)):
            last_bad = max(last_bad, row.finished)
    return last_bad - start


def check(naive_dir: Path, resilient_dir: Path) -> list[Goal]:
    naive, resilient = build_summary(naive_dir), build_summary(resilient_dir)
    n_out, r_out = _phase(naive, "outage"), _phase(resilient, "outage")
    n_rec, r_rec = recovery_seconds(naive_dir, naive), recovery_seconds(resilient_dir, resilient)
    r_base_p99 = _phase(resilient, "baseline").actions["feed"].p99_ms or 0
    r_out_p99 = r_out.actions["feed"].p99_ms or 0
    west = n_out.feed_success_by_dc.get("dc-west")
    return [
        Goal("naive", "dc-west feed success in the outage", west, "< 50%", west is not None and west < 0.5),
        Goal(
            "naive",
            "retry amplification @ dc-west in the outage",
            n_out.amplification_by_dc.get("dc-west"),
            "> 3x",
            (n_out.amplification_by_dc.get("dc-west") or 0) > 3,
        ),
        Goal(
            "naive",
            "0-view displays in the outage",
            n_out.symptoms["zero_view_displays"],
            "> 0",
            n_out.symptoms["zero_view_displays"] > 0,
        ),
        Goal(
            "naive",
            "earnings missing in the outage",
            n_out.symptoms["earnings_missing"],
            "> 0",
            n_out.symptoms["earnings_missing"] > 0,
        ),
        Goal("naive", "seconds to recover after power-on", n_rec, "> resilient", n_rec > r_rec),
        Goal(
            "resilient",
            "feed success in the outage (all users)",
            r_out.actions["feed"].success_rate,
            ">= 99%",
            (r_out.actions["feed"].success_rate or 0) >= 0.99,
        ),
        *[
            Goal("resilient", f"feed success in the outage @ {dc}", rate, ">= 99%", (rate or 0) >= 0.99)
            for dc, rate in sorted(r_out.feed_success_by_dc.items())
        ],
        Goal(
            "resilient",
            "0-view displays in the outage",
            r_out.symptoms["zero_view_displays"],
            "== 0",
            r_out.symptoms["zero_view_displays"] == 0,
        ),
        Goal(
            "resilient",
            "p99 feed latency outage / baseline",
            r_out_p99 / r_base_p99 if r_base_p99 else None,
            "<= 3x",
            bool(r_base_p99) and r_out_p99 <= 3 * r_base_p99,
        ),
        Goal("resilient", "seconds to recover after power-on", r_rec, "<= 5 s", r_rec <= 5),
        Goal(
            "resilient",
            "retry amplification in the outage",
            r_out.amplification,
            "<= 1.2x",
            r_out.amplification is not None and r_out.amplification <= 1.2,
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="dc-power-loss", help="a scenario with one power loss")
    parser.add_argument("--users", type=int, default=None, help="default: the scenario's")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    args = parser.parse_args()
    console = terminal()
    dirs = {}
    for name in ("naive", "resilient"):
        dirs[name] = run_scenario(
            RunOptions(
                scenario=args.scenario,
                profile=PROJECT / "profiles" / f"{name}.yaml",
                users=args.users,
                seed=args.seed,
                runs_root=args.runs,
            ),
            console,
        ).run_dir
    goals = check(dirs["naive"], dirs["resilient"])
    table = Table("profile", "figure", "measured", "goal", "met", title="power loss of dc-east: goals")
    for g in goals:
        shown = "-" if g.value is None else (f"{g.value:.1%}" if "success" in g.figure else f"{g.value:.2f}")
        table.add_row(g.run, g.figure, shown, g.goal, "[green]yes[/]" if g.met else "[red]NO[/]")
    console.print(table)
    console.print(f"runs: {dirs['naive']}  {dirs['resilient']}  (compare: blackout compare ...)")
    return 0 if all(g.met for g in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
