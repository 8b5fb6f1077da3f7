"""Benchmark: cutting and restoring a data center's power while the stack is saturated.

The resilient stack under closed-loop feed load on dc-west's gateway, from a process of its own (enough
connections to saturate two cores); each cycle powers dc-east off (time from the command until its last
process is gone) and on again (time until every instance answers /healthz). Goals: power-off < 50 ms, power-on < 5 s.

    .venv/bin/python benchmarks/power_under_load.py [--cycles 3 --connections 48]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time

import httpx
from support import load, results, stack

from services.common.seed import DEMO_PASSWORD, viewer_name
from services.gateway import api as gateway_api

OFF_GOAL_MS = 50.0
ON_GOAL_S = 5.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--connections", type=int, default=48)
    args = parser.parse_args()
    offs, ons, loads = [], [], []
    with stack.running(stack.topology("resilient"), "resilient") as runtime:
        gateway = stack.url(runtime, "gateway-west")
        login = httpx.post(
            gateway + gateway_api.LOGIN, json={"username": viewer_name(2), "password": DEMO_PASSWORD}, timeout=30
        )
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        seconds = 8.0 * args.cycles + 6
        # The load runs in its own process, as locust does beside a real controller: a thread here would hold
        # the GIL the power-off needs between reaping one killed process and the next.
        saturating = multiprocessing.get_context("spawn").Process(
            target=load.run,
            args=(f"{gateway}{gateway_api.FEED}?limit={gateway_api.FEED_LIMIT}",),
            daemon=True,
            kwargs={"connections": args.connections, "seconds": seconds, "warmup_s": 1.0, "headers": headers},
        )
        saturating.start()
        time.sleep(3.0)  # the load's ramp: the cut must come under full load
        for _ in range(args.cycles):
            loads.append(_load_1m())
            off = runtime.power_off("dc-east")
            offs.append(off.seconds * 1000)
            time.sleep(2.0)  # dark for a moment, with the load still on
            on = runtime.power_on("dc-east")
            if not on.healthy:
                print(f"dc-east did not come back: {on.detail}")
            ons.append(on.seconds if on.healthy else float("inf"))
            time.sleep(2.0)
        saturating.join(timeout=seconds + 30)
        if saturating.is_alive():  # bounded in time by load.run; never left behind
            saturating.kill()
            saturating.join()
    off_ms, on_s = statistics.median(offs), statistics.median(ons)
    print(f"power-off under load: {', '.join(f'{v:.0f}' for v in offs)} ms (median {off_ms:.0f} ms)")
    print(f"power-on under load:  {', '.join(f'{v:.2f}' for v in ons)} s (median {on_s:.2f} s)")
    print(f"load average during the cuts: {', '.join(f'{v:.1f}' for v in loads)}")
    print(results.verdict("power-off, saturated", f"{off_ms:.0f} ms", f"< {OFF_GOAL_MS:g} ms", off_ms < OFF_GOAL_MS))
    print(results.verdict("power-on to healthy, saturated", f"{on_s:.2f} s", f"< {ON_GOAL_S:g} s", on_s < ON_GOAL_S))
    saved = results.save(
        "power_under_load", {"power_off_ms": offs, "power_on_s": ons, "load_1m": loads, "connections": args.connections}
    )
    print(f"saved {saved}")
    return 0 if off_ms < OFF_GOAL_MS and on_s < ON_GOAL_S else 1


def _load_1m() -> float:
    import os

    return os.getloadavg()[0]


if __name__ == "__main__":
    sys.exit(main())
