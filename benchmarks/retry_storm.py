"""Benchmark: retry-storm, sized to the machine, teaches the same lesson on a fast and on a slow machine.

Calibrates right before (`blackout calibrate`'s path, on the same CPU budget the runs get: its login capacity
sizes the scenario's users), then runs the retry-storm scenario for every seed under naive and resilient, and
reads each run's journal: the verdict and recovered_after_s. ``--cpu-share 0.5`` makes the machine slower: the
stack (every instance, and the zygote later ones fork from) runs in a CPU cgroup capped at half a core, for the
calibration and the runs alike. ``--runs DIR`` keeps the run directories there (default: a temporary folder).
Run:
    .venv/bin/python benchmarks/retry_storm.py [--seeds 1,2,3,4,5] [--cpu-share 0.5] [--runs DIR]
Goals: naive never recovers (recovered_after_s is null) and resilient recovers within the scenario's
recovered_within, in every seed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

from rich.console import Console
from support.cpu_share import CpuShare, cpu_share
from support.results import conclude

from chaos.calibration import calibrate, local_stack
from chaos.engine.run import RunOptions
from chaos.engine.scenario import load_scenario
from chaos.journal import Journal
from chaos.profile_files import profile_file
from chaos.runtime.local import LocalRuntime
from chaos.scenario_commands import seeds
from chaos.search.replay import BEFORE
from chaos.stack import run_scenario
from chaos.topology import Topology
from services.common.errors import BlackoutError

SCENARIO = "retry-storm"


class Capped(LocalRuntime):
    """A local stack whose processes run inside a CPU cgroup once they are up."""

    share: CpuShare | None = None

    def up(self) -> None:
        super().up()
        if self.share is not None:
            self.share.add_stack(self)


NOT_RUN = "not run: "


def run(seed_list: list[int], runs_root: Path, share: CpuShare | None) -> dict:
    Capped.share = share

    def stack(profile: Path, scratch: Path) -> LocalRuntime:
        return Capped(local_stack(profile, scratch).topology, scratch, profile=profile)

    def runtime(topology: Topology, run_dir: Path, profile: Path | None, journal: Journal) -> LocalRuntime:
        return Capped(topology, run_dir, profile=profile, journal=journal)

    calibration = calibrate(profile_file("naive"), runs_root, stack=stack, say=lambda line: print(line, flush=True))
    print(
        f"capacity {calibration.capacity_per_s:g} actions/s, {calibration.login_capacity_per_s:g} logins/s", flush=True
    )
    within = load_scenario(SCENARIO).hypothesis.recovered_within
    rows = []
    for seed in seed_list:
        for name in ("naive", "resilient"):
            options = RunOptions(
                scenario=SCENARIO,
                profile=profile_file(name),
                seed=seed,
                runs_root=runs_root,
                any_ports=True,
                runtime=runtime,
                observe=False,
            )
            try:
                result = run_scenario(options, Console(quiet=True))
            except BlackoutError as exc:  # a run that could not start (a stack too slow to log its users in)
                rows.append({"seed": seed, "profile": name, "recovered_after_s": None, "reasons": [f"{NOT_RUN}{exc}"]})
                print(f"  seed {seed} {name:9} {NOT_RUN}{exc}", flush=True)
                continue
            journal = json.loads((result.run_dir / "journal.json").read_text())
            users = next(e["users"] for e in _events(result.run_dir) if e.get("event") == "start")
            after = (journal.get("recovery") or {}).get("recovered_after_s")
            rows.append(
                {
                    "seed": seed,
                    "profile": name,
                    "users": users,
                    "deviated": result.deviated,
                    "recovered_after_s": after,
                    "reasons": result.reasons,
                    "run_dir": str(result.run_dir),
                }
            )
            print(f"  seed {seed} {name:9} users {users}: recovered_after_s {after}; {result.reasons}", flush=True)
    return {
        "capacity_per_s": calibration.capacity_per_s,
        "login_capacity_per_s": calibration.login_capacity_per_s,
        "recovered_within_s": within,
        "runs": rows,
    }


def _down_before(row: dict) -> bool:
    """The stack was down before the trigger (from the load alone), or the run never started: its "never
    recovered" is not the lesson."""
    return any(reason.startswith((BEFORE, NOT_RUN)) for reason in row["reasons"])


def _events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=seeds, default=[1, 2, 3, 4, 5])
    parser.add_argument("--cpu-share", type=float, help="cap the stack at this share of one core (needs root)")
    parser.add_argument("--runs", type=Path, help="keep the run directories in this folder")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="blackout-retry-storm-") as scratch:
        with cpu_share(args.cpu_share) if args.cpu_share else nullcontext() as share:
            result = run(args.seeds, args.runs or Path(scratch), share)
            if share is not None:
                result["cgroup_cpu_stat"] = share.stat()  # the cap at work: periods throttled
    result["cpu_share"] = args.cpu_share
    within = result["recovered_within_s"]
    naive = [r for r in result["runs"] if r["profile"] == "naive"]
    resilient = [r for r in result["runs"] if r["profile"] == "resilient"]
    stuck = [r for r in naive if r["recovered_after_s"] is None and not _down_before(r)]
    checks = [
        (
            "naive steady before the trigger, then never recovers",
            f"{len(stuck)}/{len(naive)} seeds",
            "every seed",
            len(stuck) == len(naive),
        ),
        (
            "resilient recovers",
            f"{sum(r['recovered_after_s'] is not None and r['recovered_after_s'] <= within for r in resilient)}"
            f"/{len(resilient)} seeds within {within:g}s",
            "every seed",
            all(r["recovered_after_s"] is not None and r["recovered_after_s"] <= within for r in resilient),
        ),
    ]
    name = "retry_storm" + (f"_share{args.cpu_share:g}" if args.cpu_share else "")
    return conclude(name, result, checks, started)


if __name__ == "__main__":
    sys.exit(main())
