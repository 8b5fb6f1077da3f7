"""Benchmark: GET /feed at saturation against the bound the same gateway sets in the same run.

The bound: the gateway's /healthz rate divided by the request handlings one feed takes (gateway,
recommender, and views three times: history, trending, counts; read from the X-Blackout-Calls
header). Goal: the feed reaches >= 70% of it. Starts the resilient stack on local processes, logs
in, then drives the dc-east gateway with a closed-loop generator (N connections, fixed time, 127.0.0.1).

    .venv/bin/python benchmarks/feed_throughput.py [--connections 32 --seconds 10 --runs 3 --flame DIR]

--flame DIR records py-spy flame graphs (SVG) of the gateway, recommender and views under the feed
load (needs `pip install -e '.[bench]'`). Prints both rates, the bound and the ratio; saves JSON
under benchmarks/results/; exits 1 when the goal is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import httpx
from support import load, results
from support.stack import cpu_seconds, running, topology, url

from chaos.runtime.local import LocalRuntime
from services.common.accounting import CALLS_HEADER
from services.common.api import HEALTHZ
from services.common.seed import DEMO_PASSWORD
from services.gateway import api as gateway_api

GOAL = 0.70
USER = "viewer-0002"
REAL_SOURCES = {"personalized", "trending"}  # "cached" and "generic" are the fallback ladder's
PROFILED = ("gateway-east", "recommender-east", "views-east")
SUFFIX = {"flamegraph": "svg", "raw": "txt", "speedscope": "json"}


def login(gateway: str) -> dict[str, str]:
    answer = httpx.post(gateway + gateway_api.LOGIN, json={"username": USER, "password": DEMO_PASSWORD}, timeout=30)
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def fully_served(body: bytes) -> bool:
    """A feed from the real path: every count read (views_status ok), no item from a fallback."""
    try:
        items = json.loads(body)["items"]
    except (ValueError, KeyError, TypeError):
        return False
    return bool(items) and all(i.get("views_status") == "ok" and i.get("source") in REAL_SOURCES for i in items)


def handlings_per_feed(feed_url: str, headers: dict[str, str]) -> int:
    """1 (the gateway) + every call made below it, as the gateway reports them."""
    answer = httpx.get(feed_url, headers=headers, timeout=30)
    answer.raise_for_status()
    if any(item.get("views_status") != "ok" for item in answer.json()["items"]):
        raise SystemExit(f"the feed is degraded before any load: {answer.text[:300]}")
    return 1 + int(answer.headers[CALLS_HEADER])


def start_flame_graphs(runtime: LocalRuntime, out: Path, seconds: float, fmt: str) -> list[subprocess.Popen]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        raise SystemExit("--flame needs py-spy: .venv/bin/pip install -e '.[bench]'")
    out.mkdir(parents=True, exist_ok=True)
    status = runtime.status()
    return [
        subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(status[name]["pid"]),
                "--duration",
                str(int(seconds)),
                "--rate",
                "200",
                "--format",
                fmt,
                "--output",
                str(out / f"{name}.{SUFFIX[fmt]}"),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name in PROFILED
    ]


def _costed(runtime: LocalRuntime, cpu: dict[str, float], target: str, opts: dict) -> load.Rate:
    """One closed-loop run; adds each instance's CPU ms per answered request (whole run, warm-up included) to ``cpu``."""
    before = cpu_seconds(runtime)
    rate = load.run(target, **opts)
    after = cpu_seconds(runtime)
    answered = max(1.0, rate.per_second * (opts["seconds"] + opts["warmup_s"]))
    for name, used in after.items():
        cost = 1000.0 * (used - before.get(name, used)) / answered
        if cost >= 0.005:
            cpu[name] = round(cpu.get(name, 0.0) + cost / 1, 3)  # summed over runs; divided below
    return rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--connections",
        type=int,
        default=16,
        help="enough to saturate 2 cores; more only queues (and trips admission control)",
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=3, help="alternating healthz/feed runs; medians are reported")
    parser.add_argument("--limit", type=int, default=10, help="items per feed")
    parser.add_argument("--flame", type=Path, help="write py-spy flame graphs of the feed load here")
    parser.add_argument(
        "--flame-format",
        choices=sorted(SUFFIX),
        default="flamegraph",
        help="flamegraph (SVG), raw (collapsed stacks) or speedscope",
    )
    args = parser.parse_args()
    if not 1 <= args.runs <= 10:
        parser.error("--runs must be 1..10")

    with running(topology("resilient"), "resilient") as runtime:
        gateway = url(runtime, "gateway-east")
        headers = login(gateway)
        feed_url = f"{gateway}/feed?limit={args.limit}"
        handlings = handlings_per_feed(feed_url, headers)
        opts = {"connections": args.connections, "seconds": args.seconds, "warmup_s": args.warmup}
        healthz_runs, feed_runs = [], []
        cpu: dict[str, dict[str, float]] = {"healthz": {}, "feed": {}}
        for i in range(args.runs):
            healthz_runs.append(_costed(runtime, cpu["healthz"], gateway + HEALTHZ, opts))
            spies = (
                start_flame_graphs(runtime, args.flame, args.seconds + args.warmup, args.flame_format)
                if args.flame and i == 0
                else []
            )
            feed_runs.append(
                _costed(runtime, cpu["feed"], feed_url, {**opts, "headers": headers, "judge": fully_served})
            )
            for spy in spies:
                spy.wait(timeout=60)
    healthz = statistics.median(r.per_second for r in healthz_runs)
    feed = statistics.median(r.per_second for r in feed_runs)
    bound = healthz / handlings
    # Each feed run follows its own healthz run: a pair shares whatever else the machine was doing then,
    # so the median of the pairs' ratios is the figure (the ratio of the medians is shown beside it).
    pairs = [
        f.per_second / (h.per_second / handlings) for h, f in zip(healthz_runs, feed_runs, strict=True) if h.per_second
    ]
    ratio = statistics.median(pairs) if pairs else 0.0
    ratio_of_medians = feed / bound if bound else 0.0
    feed_p50 = statistics.median(r.percentile(50) or 0.0 for r in feed_runs)
    print(
        f"healthz  {healthz:8.0f}/s   (median of {args.runs} runs, {args.connections} connections, {args.seconds:g} s each)"
    )
    not_ok = sum(r.degraded + sum(n for st, n in r.statuses.items() if not 200 <= st < 300) for r in feed_runs)
    print(
        f"feed     {feed:8.0f}/s   p50 {feed_p50:.1f} ms   ({handlings} request handlings per feed; "
        f"{not_ok} answers refused or from a fallback, not counted)"
    )
    print(f"bound    {bound:8.0f}/s   = healthz / {handlings}")
    for kind, costs in cpu.items():
        shown = ", ".join(f"{n} {c / args.runs:.2f}" for n, c in sorted(costs.items(), key=lambda kv: -kv[1]))
        print(f"cpu ms per {kind}: {shown}")
    healthz_cpu = sum(cpu["healthz"].values()) / args.runs
    feed_cpu = sum(cpu["feed"].values()) / args.runs
    in_healthz = feed_cpu / healthz_cpu if healthz_cpu else 0.0
    print(
        f"a feed costs {feed_cpu:.2f} ms of CPU across the stack = {in_healthz:.1f} healthz handlings "
        f"(the bound assumes {handlings}); less disturbed by other work than the rates"
    )
    print(f"ratio per run pair: {', '.join(f'{r:.0%}' for r in pairs)}; ratio of the medians {ratio_of_medians:.0%}")
    busy = max(r.load_1m for r in healthz_runs + feed_runs)
    if busy > (os.cpu_count() or 1):
        print(
            f"note: load average reached {busy:.1f} on {os.cpu_count()} cores during the runs: other work took CPU "
            "from the stack; the feed (three processes) loses more of it than healthz (one)"
        )
    line = results.verdict("feed / bound (median of run pairs)", f"{ratio:.0%}", f">= {GOAL:.0%}", ratio >= GOAL)
    print(line)
    path = results.save(
        "feed_throughput",
        {
            "goal": {"feed_over_bound": GOAL},
            "measured": {
                "healthz_per_s": round(healthz, 1),
                "feed_per_s": round(feed, 1),
                "handlings_per_feed": handlings,
                "bound_per_s": round(bound, 1),
                "feed_over_bound": round(ratio, 3),
                "feed_over_bound_per_pair": [round(r, 3) for r in pairs],
                "ratio_of_medians": round(ratio_of_medians, 3),
                "feed_p50_ms": round(feed_p50, 2),
                "feed_cpu_ms": round(feed_cpu, 3),
                "healthz_cpu_ms": round(healthz_cpu, 3),
                "feed_cpu_in_healthz_handlings": round(in_healthz, 2),
            },
            "met": ratio >= GOAL,
            "runs": {"healthz": [r.summary() for r in healthz_runs], "feed": [r.summary() for r in feed_runs]},
            "cpu_ms_per_request": {k: {n: round(c / args.runs, 3) for n, c in v.items()} for k, v in cpu.items()},
            "flame_graphs": str(args.flame) if args.flame else None,
        },
    )
    print(f"saved {path}")
    return 0 if ratio >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
