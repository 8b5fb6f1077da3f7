"""Benchmark: every scenario of the library under both profiles -> the verdict, and the figure that tells
each story (feed success while faults were active, seconds until the hypothesis held again).

Runs 14 real scenarios per seed one after another, each `blackout run` in its own process (about 20 minutes
a seed at the scenarios' own users). Expected: the resilient profile holds everywhere, the naive one deviates
where the scenario's `profiles` note says it should, for every seed and at every load. Exits 1 when a run's
verdict differs from that expectation.

    .venv/bin/python benchmarks/scenario_matrix.py [--only dc-power-loss,partition] [--seeds 7,8,9]
        [--users 200] [--think 5-15] [--profiles resilient]
Scenarios sized to the machine (retry-storm) read `<runs>/calibration.json`: `blackout calibrate` first.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from rich.table import Table
from support import results

from chaos import calibration
from chaos.console import terminal
from chaos.engine.scenario import library
from chaos.report import build_summary
from chaos.scenario_commands import seeds, think
from services.common.errors import BlackoutError, UsageError

PROJECT = Path(__file__).resolve().parents[1]
PROFILES = ("naive", "resilient")


def story(run_dir: Path) -> dict:
    doc = json.loads((run_dir / "journal.json").read_text())
    during = [c for c in doc["steady_states"]["during"] if c["steady_state_met"] is not None]
    held = sum(1 for c in during if c["steady_state_met"])
    try:
        outage = build_summary(run_dir).phase("outage")
        feed = outage.actions.get("feed") if outage else None
    except BlackoutError:
        feed = None
    recovery = doc.get("recovery") or {}
    return {
        "deviated": doc["deviated"],
        "reasons": doc["reasons"],
        "checks_held_during": f"{held}/{len(during)}",
        "feed_success_during": None if feed is None else feed.success_rate,
        "feed_p99_ms_during": None if feed is None else feed.p99_ms,
        "recovered_after_s": recovery.get("recovered_after_s"),
        "recovery_goal_s": recovery.get("within_s"),
        "run_dir": str(run_dir),
    }


def run_one(scenario: str, profile: str, seed: int, runs: Path, load_flags: list[str]) -> Path:
    """`blackout run`, as a user runs it, in its own process; its run directory."""
    before = set(runs.glob("*")) if runs.exists() else set()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "chaos.cli",
            "run",
            scenario,
            "--profile",
            profile,
            "--seed",
            str(seed),
            "--runs",
            str(runs),
            "--any-ports",  # beside whatever else runs here (a demo on 8000, a Prometheus on 9090)
            *load_flags,
        ],
        cwd=PROJECT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=1800,
        check=False,
    )
    [run_dir] = [d for d in set(runs.glob("*")) - before if d.is_dir()]
    return run_dir


def expected_to_deviate(note: str) -> bool:
    return note.strip().startswith("deviates")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated scenario names")
    parser.add_argument("--seeds", type=seeds, default=[7], metavar="S[,S...]", help="one run per seed (default 7)")
    parser.add_argument("--users", type=int, help="users for every run (default: each scenario's own)")
    parser.add_argument("--think", type=think, metavar="MIN-MAX", help="each user's pause, as `blackout run --think`")
    parser.add_argument("--profiles", default=",".join(PROFILES), help="comma-separated (default naive,resilient)")
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    args = parser.parse_args()
    load_flags = [
        *(["--users", str(args.users)] if args.users else []),
        *(["--think", f"{args.think[0]:g}-{args.think[1]:g}"] if args.think else []),
    ]
    console = terminal()
    chosen = [s for s in library() if not args.only or s.name in args.only.split(",")]
    if not args.users and any(s.load.capacity is not None for s in chosen):
        try:
            calibration.load(args.runs)  # retry-storm sizes its users to it: say so now, not after 10 minutes
        except UsageError as exc:
            parser.error(str(exc))
    rows = []
    for seed in args.seeds:
        for scenario in chosen:
            for profile in args.profiles.split(","):
                figures = story(run_one(scenario.name, profile, seed, args.runs, load_flags))
                expected = expected_to_deviate(scenario.profiles.get(profile, "holds"))
                rows.append(
                    {
                        "scenario": scenario.name,
                        "profile": profile,
                        "seed": seed,
                        "expected_deviation": expected,
                        **figures,
                    }
                )
                console.print(
                    f"{scenario.name:22} {profile:10} seed {seed:<4}"
                    f" {'DEVIATED' if figures['deviated'] else 'held':9} {figures['run_dir']}"
                )
    users = f"{args.users} users" if args.users else "each scenario's users"
    table = Table(
        "scenario",
        "profile",
        "seed",
        "verdict",
        "as expected",
        "feed ok during",
        "p99 during",
        "recovered after",
        title=f"every scenario, {users}",
    )
    for row in rows:
        success = row["feed_success_during"]
        table.add_row(
            row["scenario"],
            row["profile"],
            str(row["seed"]),
            "deviated" if row["deviated"] else "held",
            "yes" if row["deviated"] == row["expected_deviation"] else "[red]NO[/]",
            "-" if success is None else f"{success:.0%}",
            "-" if row["feed_p99_ms_during"] is None else f"{row['feed_p99_ms_during']:.0f} ms",
            "never" if row["recovered_after_s"] is None else f"{row['recovered_after_s']:g} s",
        )
    console.print(table)
    record = {"seeds": args.seeds, "users": args.users, "think_s": args.think, "runs": rows}
    print(f"saved {results.save('scenario_matrix', record)}")
    return 0 if all(r["deviated"] == r["expected_deviation"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
