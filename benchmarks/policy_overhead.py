"""Benchmark: what breaker + retry + timeout + bulkhead + budget (+ deadline) add to one dependency
call when nothing fails, against the same httpx client called bare, in the same run.

Both go through the services' own HTTP client (httpx over aiohttp) to a tiny local server (a raw
ASGI app under uvicorn, its own process, 127.0.0.1), or with --mock to an httpx.MockTransport (no
network: the client-side cost alone). The resilient profile's policy for `views` is used, inside a
request deadline (as in a service). Calls are sequential, in alternating blocks of bare and guarded
calls, so drift and noisy neighbours hit both alike.

    .venv/bin/python benchmarks/policy_overhead.py [--calls 4000 --block 200 --mock]

Goal: p50(guarded) - p50(bare) < 0.2 ms, taken as the median over adjacent blocks of the difference of
their p50s. Prints both kinds, the CPU per call, saves JSON, exits 1 if missed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import psutil
from support import results
from support.tiny_server import tiny_server

from services.common.http import DependencyClient, make_http_client
from services.common.policy import ProfileHolder, load_profile
from services.common.resilience import set_deadline
from services.views.api import TRENDING

GOAL_MS = 0.2
PROFILE = Path(__file__).resolve().parents[1] / "profiles" / "resilient.yaml"


async def measure(url: str, transport: httpx.AsyncBaseTransport | None, calls: int, block: int) -> dict[str, dict]:
    http = make_http_client(transport)
    guarded = DependencyClient("views", [url], ProfileHolder(load_profile(PROFILE)), http)
    samples: dict[str, list[float]] = {"bare": [], "guarded": []}
    cpu: dict[str, float] = {"bare": 0.0, "guarded": 0.0}
    block_p50s: list[dict[str, float]] = []  # per block pair: each kind's p50 (adjacent in time)

    async def bare_call() -> None:
        response = await http.request("GET", url + TRENDING)
        await response.aread()

    async def guarded_call() -> None:
        await guarded.request("GET", TRENDING)

    kinds = {"bare": bare_call, "guarded": guarded_call}
    try:
        set_deadline(3600.0)  # as inside a service: the deadline is checked and sent on with every call
        for call in kinds.values():  # warm-up: connections, imports
            for _ in range(100):
                await call()
        for n in range(calls // block):
            order = ("bare", "guarded") if n % 2 == 0 else ("guarded", "bare")
            pair: dict[str, float] = {}
            for kind in order:
                call = kinds[kind]
                cpu_started = time.process_time()
                times = []
                for _ in range(block):
                    started = time.perf_counter()
                    await call()
                    times.append((time.perf_counter() - started) * 1000.0)
                cpu[kind] += time.process_time() - cpu_started
                samples[kind] += times
                pair[kind] = statistics.median(times)
            block_p50s.append(pair)
    finally:
        await http.aclose()
    figures = {
        kind: {
            "p50_ms": statistics.median(s),
            "p99_ms": statistics.quantiles(s, n=100)[98],
            "cpu_ms_per_call": 1000.0 * cpu[kind] / len(s),
            "calls": len(s),
        }
        for kind, s in samples.items()
    }
    figures["pairs"] = {
        "overhead_p50_ms": statistics.median(p["guarded"] - p["bare"] for p in block_p50s),
        "blocks": len(block_p50s),
    }
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=4000, help="of each kind")
    parser.add_argument("--block", type=int, default=200)
    parser.add_argument("--mock", action="store_true", help="an httpx.MockTransport instead of a local server")
    args = parser.parse_args()
    if not 1 <= args.block <= args.calls <= 100_000:
        parser.error("need 1 <= --block <= --calls <= 100000")
    run: Callable[[Coroutine[Any, Any, dict[str, dict[str, Any]]]], dict[str, dict[str, Any]]]
    try:
        import uvloop

        run = uvloop.run  # what uvicorn runs the services on
    except ImportError:
        run = asyncio.run
    if args.mock:
        target = "httpx.MockTransport (no network: client-side cost only)"
        mock = httpx.MockTransport(lambda request: httpx.Response(200, json={"ok": True}))
        figures = run(measure("http://views.mock", mock, args.calls, args.block))
    else:
        with tiny_server() as url:
            target = f"a tiny local server ({url}, raw ASGI under uvicorn, own process)"
            figures = run(measure(url, None, args.calls, args.block))
    bare, guarded = figures["bare"], figures["guarded"]
    # The figure: the median over adjacent block pairs of (p50 guarded - p50 bare), so that a noisy
    # neighbour in one stretch of time weighs on both kinds alike; the difference of the overall p50s beside it.
    overhead = figures["pairs"]["overhead_p50_ms"]
    print(f"target: {target}; resilient profile, policy of 'views'; {args.calls} sequential calls of each kind")
    for kind in ("bare", "guarded"):
        f = figures[kind]
        print(f"{kind:<8} p50 {f['p50_ms']:.3f} ms   p99 {f['p99_ms']:.3f} ms   cpu {f['cpu_ms_per_call']:.3f} ms/call")
    print(
        f"overhead p50 {overhead:.3f} ms (median of {figures['pairs']['blocks']} block pairs; "
        f"of the overall p50s {guarded['p50_ms'] - bare['p50_ms']:.3f} ms), "
        f"cpu {guarded['cpu_ms_per_call'] - bare['cpu_ms_per_call']:.3f} ms per call"
    )
    met = overhead < GOAL_MS
    print(results.verdict("policy overhead per call (p50)", f"{overhead:.3f} ms", f"< {GOAL_MS} ms", met))
    path = results.save(
        "policy_overhead",
        {
            "goal": {"overhead_p50_ms": GOAL_MS},
            "met": met,
            "target": target,
            "measured": {
                "overhead_p50_ms": round(overhead, 4),
                "overhead_cpu_ms": round(guarded["cpu_ms_per_call"] - bare["cpu_ms_per_call"], 4),
            },
            "calls": {
                k: {m: round(v, 4) if isinstance(v, float) else v for m, v in f.items()} for k, f in figures.items()
            },
            "load_1m_after": round(psutil.getloadavg()[0], 2),
        },
    )
    print(f"saved {path}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
