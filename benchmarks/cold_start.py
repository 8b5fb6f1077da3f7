"""Benchmark: cold start of 10 instances, and what the running stack costs in memory.

Starts the resilient topology (10 instances: two data centers of gateway, auth, views, earnings,
recommender) on local processes from an empty run directory, several times: `up()` from the first
bind until every instance answers /healthz (each views instance seeds its log, each auth its users).
Then, on the last stack, serves a few seconds of feeds and sums every instance's memory (RSS, and
PSS: shared pages split between the processes sharing them).

    .venv/bin/python benchmarks/cold_start.py [--runs 3 --load-seconds 5]

Goals: up() < 5 s (median of the runs); sum of RSS < 1 GiB. Prints, saves JSON, exits 1 if missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import httpx
from support import load, results
from support.stack import memory_bytes, running, topology, url

from chaos.runtime.local import LocalRuntime
from services.common.seed import DEMO_PASSWORD, viewer_name
from services.gateway import api as gateway_api

UP_GOAL_S = 5.0
MEMORY_GOAL = 1 << 30  # 1 GiB
INSTANCES = 10


def serve_some_feeds(runtime: LocalRuntime, seconds: float) -> float:
    """Feeds per second through one gateway (so the memory figure is of a stack that has worked)."""
    gateway = url(runtime, "gateway-east")
    token = httpx.post(
        gateway + gateway_api.LOGIN, json={"username": viewer_name(3), "password": DEMO_PASSWORD}, timeout=30
    )
    token.raise_for_status()
    headers = {"Authorization": f"Bearer {token.json()['token']}"}
    return load.run(
        gateway + gateway_api.FEED, connections=8, seconds=seconds, warmup_s=0.5, headers=headers
    ).per_second


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--load-seconds", type=float, default=5.0)
    args = parser.parse_args()
    if not 1 <= args.runs <= 10 or not 0 < args.load_seconds <= 60:
        parser.error("--runs must be 1..10 and --load-seconds 0..60")
    topo = topology("resilient")
    if len(topo.instances()) != INSTANCES:
        raise SystemExit(
            f"topologies/resilient.yaml has {len(topo.instances())} instances, this benchmark wants {INSTANCES}"
        )
    ups: list[float] = []
    memory: dict[str, dict[str, int]] = {}
    feeds_per_s = 0.0
    for n in range(args.runs):
        timings: dict[str, float] = {}
        with running(topo, "resilient", timings=timings) as runtime:
            ups.append(timings["up_s"])
            print(f"run {n + 1}: up in {timings['up_s']:.2f} s")
            if n == args.runs - 1:
                idle = memory_bytes(runtime)
                feeds_per_s = serve_some_feeds(runtime, args.load_seconds)
                memory = memory_bytes(runtime)
    up = statistics.median(ups)
    rss, pss = sum(m["rss"] for m in memory.values()), sum(m["pss"] for m in memory.values())
    idle_rss = sum(m["rss"] for m in idle.values())
    mib = 1 << 20
    print(
        f"memory of {len(memory)} instances after {args.load_seconds:g} s of feeds ({feeds_per_s:.0f}/s): "
        f"RSS {rss / mib:.0f} MiB (idle {idle_rss / mib:.0f} MiB), PSS {pss / mib:.0f} MiB; "
        f"largest {max(memory, key=lambda k: memory[k]['rss'])} {max(m['rss'] for m in memory.values()) / mib:.0f} MiB"
    )
    up_met, mem_met = up < UP_GOAL_S, rss < MEMORY_GOAL
    print(
        results.verdict(
            f"cold start of {INSTANCES} instances (median of {args.runs})", f"{up:.2f} s", f"< {UP_GOAL_S:g} s", up_met
        )
    )
    print(results.verdict("local stack memory (sum of RSS)", f"{rss / mib:.0f} MiB", "< 1024 MiB", mem_met))
    path = results.save(
        "cold_start",
        {
            "goal": {"up_s": UP_GOAL_S, "memory_bytes": MEMORY_GOAL},
            "met": up_met and mem_met,
            "measured": {
                "up_s_median": round(up, 3),
                "up_s_runs": [round(u, 3) for u in ups],
                "rss_bytes": rss,
                "pss_bytes": pss,
                "idle_rss_bytes": idle_rss,
                "feeds_per_s_during": round(feeds_per_s, 1),
            },
            "per_instance": memory,
        },
    )
    print(f"saved {path}")
    return 0 if up_met and mem_met else 1


if __name__ == "__main__":
    sys.exit(main())
