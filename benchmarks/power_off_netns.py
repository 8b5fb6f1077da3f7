"""Benchmark: start-up and power-off of the netns runtime (a network namespace per data center) next to local processes.

For each runtime the fragile topology (8 instances, two data centers) is started ``--runs`` times from an empty
run directory (`up()`: netns adds the namespaces, the WAN bridge and the links first), and dc-east (5 instances)
is powered off and on ``--cycles`` times. Power-off is the command to the last process gone, and on netns its
link down before that; power-on is until every instance answers /healthz (netns: the link is up first).

    .venv/bin/python benchmarks/power_off_netns.py [--runs 3 --cycles 5]     (needs root, iproute2, nftables)

Goals: netns power-off < 100 ms (a cut must look instant to the callers' timeouts), netns up() < 5 s.
Prints, saves JSON, exits 1 if missed; exits 2 with a reason when this machine cannot make namespaces.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from support import results
from support.stack import PROJECT, topology

from chaos.runtime import netlink
from chaos.runtime.local import LocalRuntime
from chaos.runtime.netns import NetnsRuntime

OFF_GOAL_S = 0.1
UP_GOAL_S = 5.0
DC = "dc-east"


def measure(make: type[LocalRuntime], scratch: Path, runs: int, cycles: int) -> dict[str, list[float]]:
    topo = topology("fragile").with_any_ports()
    profile = PROJECT / "profiles" / "naive.yaml"
    ups, network, offs, ons = [], [], [], []
    for n in range(runs):
        runtime = make(topo, scratch / f"{make.name}-{n}", profile=profile)
        started = time.monotonic()
        with runtime:
            ups.append(time.monotonic() - started)
            network.append(getattr(runtime, "network_seconds", 0.0))
            if n < runs - 1:
                continue
            for _ in range(cycles):
                offs.append(runtime.power_off(DC).seconds)
                if isinstance(runtime, NetnsRuntime) and runtime.link_up(DC):
                    raise SystemExit(f"{DC}'s link is still up after its power-off")
                on = runtime.power_on(DC)
                if not on.healthy:
                    raise SystemExit(f"{make.name}: {DC} did not come back: {on.detail}")
                ons.append(on.seconds)
    return {"up_s": ups, "network_s": network, "off_s": offs, "on_s": ons}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cycles", type=int, default=5)
    args = parser.parse_args()
    if not 1 <= args.runs <= 10 or not 1 <= args.cycles <= 20:
        parser.error("--runs must be 1..10 and --cycles 1..20")
    if why := netlink.why_unsupported():
        print(why, file=sys.stderr)
        return 2
    measured: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="blackout-bench-") as scratch:
        for make in (LocalRuntime, NetnsRuntime):
            figures = measure(make, Path(scratch), args.runs, args.cycles)
            summary = {
                "up_s_median": round(statistics.median(figures["up_s"]), 2),
                "network_s_median": round(statistics.median(figures["network_s"]), 3),
                "off_ms_median": round(statistics.median(figures["off_s"]) * 1000, 1),
                "off_ms_max": round(max(figures["off_s"]) * 1000, 1),
                "on_s_median": round(statistics.median(figures["on_s"]), 2),
            }
            measured[make.name] = {**summary, "runs": figures}
            print(
                f"{make.name:>6}: up {summary['up_s_median']:.2f} s median (network {summary['network_s_median']:.3f} s), "
                f"{DC} power-off {summary['off_ms_median']:.0f} ms median (max {summary['off_ms_max']:.0f} ms), "
                f"power-on {summary['on_s_median']:.2f} s median"
            )
    netns = measured["netns"]
    off_met = netns["off_ms_median"] / 1000 < OFF_GOAL_S
    up_met = netns["up_s_median"] < UP_GOAL_S
    print(results.verdict(f"netns {DC} power-off", f"{netns['off_ms_median']:.0f} ms", "< 100 ms", off_met))
    print(results.verdict("netns up() of 8 instances", f"{netns['up_s_median']:.2f} s", f"< {UP_GOAL_S:g} s", up_met))
    path = results.save(
        "power_off_netns",
        {
            "goal": {"off_s": OFF_GOAL_S, "up_s": UP_GOAL_S},
            "met": off_met and up_met,
            "runs": args.runs,
            "cycles": args.cycles,
            "measured": measured,
        },
    )
    print(f"saved {path}")
    return 0 if off_met and up_met else 1


if __name__ == "__main__":
    sys.exit(main())
