"""Benchmark: how long a data center's power-off takes, containers (Docker runtime) next to local processes.

The fragile topology's dc-east (5 instances) is powered off and on ``--cycles`` times on each runtime. The
figure is the cut: from the first SIGKILL until every instance of the data center is gone (local: the
process group is SIGKILLed and every process reaped; Docker: every container SIGKILLed concurrently and
reported stopped by the engine). Power-on (until every instance answers /healthz) is printed alongside.

    .venv/bin/python benchmarks/power_off_containers.py [--cycles 5]     (needs `make image` and an engine)

Goal: a container data center's cut stays under 1 s (a power cut must look instant to the callers' timeouts).
Prints, saves JSON, exits 1 if missed; exits 2 with a reason when no Docker engine answers.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from support import results
from support.stack import PROJECT, topology

from chaos.runtime.base import Runtime, RuntimeError_
from chaos.runtime.docker import DockerRuntime
from chaos.runtime.local import LocalRuntime

GOAL_S = 1.0
DC = "dc-east"


def cycles(runtime: Runtime, count: int) -> dict[str, list[float]]:
    offs, ons = [], []
    with runtime:
        for _ in range(count):
            offs.append(runtime.power_off(DC).seconds)
            on = runtime.power_on(DC)
            if not on.healthy:
                raise SystemExit(f"{runtime.name}: {DC} did not come back: {on.detail}")
            ons.append(on.seconds)
    return {"off_s": offs, "on_s": ons}


def summary(figures: dict[str, list[float]]) -> dict[str, float]:
    return {
        "off_ms_median": round(statistics.median(figures["off_s"]) * 1000, 1),
        "off_ms_max": round(max(figures["off_s"]) * 1000, 1),
        "on_s_median": round(statistics.median(figures["on_s"]), 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=5)
    args = parser.parse_args()
    if not 1 <= args.cycles <= 20:
        parser.error("--cycles must be 1..20")
    topo = topology("fragile").with_any_ports()
    profile = PROJECT / "profiles" / "naive.yaml"
    measured: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="blackout-bench-") as scratch:
        for name, make in (("local", LocalRuntime), ("docker", DockerRuntime)):
            try:
                figures = cycles(make(topo, Path(scratch) / name, profile=profile), args.cycles)
            except RuntimeError_ as exc:
                if name == "docker":
                    print(f"the Docker runtime could not run: {exc}", file=sys.stderr)
                    return 2
                raise
            measured[name] = {**summary(figures), "runs": figures}
            print(
                f"{name:>6}: {DC} power-off {measured[name]['off_ms_median']:.0f} ms median "
                f"(max {measured[name]['off_ms_max']:.0f} ms), power-on {measured[name]['on_s_median']:.2f} s median"
            )
    off = measured["docker"]["off_ms_median"] / 1000
    met = off < GOAL_S
    print(
        results.verdict(
            f"{DC}'s containers cut (median of {args.cycles})", f"{off * 1000:.0f} ms", f"< {GOAL_S * 1000:.0f} ms", met
        )
    )
    path = results.save(
        "power_off_containers",
        {
            "goal": {"off_s": GOAL_S},
            "met": met,
            "cycles": args.cycles,
            "instances": len(topo.data_centers[DC].instances),
            "measured": measured,
        },
    )
    print(f"saved {path}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
