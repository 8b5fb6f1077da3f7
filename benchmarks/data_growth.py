"""Benchmark: the views reads cost the same with 1,000,000 view events as with 10,000.

Bulk-loads two views databases (10k and 1M events: 200 viewers, 400 videos with long-tailed
popularity, so at 1M a user has ~5,000 events and a popular video tens of thousands), opens each
with the real views app (which builds its aggregates from the log once), and times every read the
feed makes through the app in process (httpx's ASGI transport: FastAPI included, no network):
POST /views/counts (10 videos), GET /users/{id}/history?limit=30, GET /trending?limit=40. Rounds
alternate between the two sizes so a noisy neighbour hurts both alike. Also shows, for contrast,
the same answers computed straight from the log (the queries before the aggregates).

    .venv/bin/python benchmarks/data_growth.py [--large 1000000 --small 10000 --rounds 10]

Goal: each endpoint's median at the large size <= 1.5x its median at the small size. Prints the
figures, saves JSON under benchmarks/results/, exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from support import results

from services.common.db import Database
from services.common.seed import N_VIDEOS, N_VIEWERS, video_name, viewer_name
from services.common.settings import ServiceSettings
from services.views import aggregates, api
from services.views.app import LOG_SCHEMA, create_app

GOAL = 1.5
VIEWERS = [viewer_name(i) for i in range(1, N_VIEWERS + 1)]
VIDEOS = [video_name(i) for i in range(1, N_VIDEOS + 1)]
FEED_VIDEOS = VIDEOS[:10]  # the most popular: the most rows behind their counts
USER = VIEWERS[1]
ENDPOINTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "counts": ("POST", api.COUNTS, {"json": {"video_ids": FEED_VIDEOS}}),
    "history": ("GET", api.HISTORY.format(user_id=USER), {"params": {"limit": 30}}),
    "trending": ("GET", api.TRENDING, {"params": {"limit": 40}}),
}
# The same answers straight from the log: what the reads cost before the aggregates.
FROM_THE_LOG = {
    "counts": (
        "SELECT video_id, COUNT(*) FROM events WHERE video_id IN ({}) GROUP BY video_id".format(
            ",".join("?" * len(FEED_VIDEOS))
        ),
        FEED_VIDEOS,
    ),
    "history": (
        "SELECT video_id, MAX(seq) AS last FROM events WHERE user_id = ? GROUP BY video_id ORDER BY last DESC LIMIT 30",
        [USER],
    ),
    "trending": (
        "SELECT video_id, COUNT(*) AS n FROM (SELECT video_id FROM events ORDER BY seq DESC LIMIT 2000) "
        "GROUP BY video_id ORDER BY n DESC, video_id LIMIT 40",
        [],
    ),
}


def events(count: int, seed: int = 1) -> Iterator[tuple[str, str, str, float]]:
    rng = random.Random(seed)
    weights = [1 / rank**0.7 for rank in range(1, len(VIDEOS) + 1)]  # long-tailed, like the seeded history
    videos = rng.choices(VIDEOS, weights, k=count)
    for n, video in enumerate(videos):
        yield f"bulk-{n}", video, VIEWERS[rng.randrange(len(VIEWERS))], 1_700_000_000.0 + n


def bulk_load(data_dir: Path, count: int) -> tuple[float, float]:
    """Events straight into the log (no trigger yet), then the app's own start builds the aggregates.
    Returns (seconds to load, seconds for the app to build its aggregates)."""
    started = time.perf_counter()
    db = Database(data_dir / "views-bench.sqlite3", LOG_SCHEMA)
    with db.transaction() as conn:
        conn.executemany(
            "INSERT INTO events (event_id, video_id, user_id, t, origin) VALUES (?, ?, ?, ?, 'seed')", events(count)
        )
    db.close()
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    db = Database(data_dir / "views-bench.sqlite3", LOG_SCHEMA + aggregates.SCHEMA)
    aggregates.ensure(db)
    db.close()
    return loaded, time.perf_counter() - started


def app_for(data_dir: Path):
    settings = ServiceSettings(
        service="views",
        instance="views-bench",
        dc="dc-bench",
        port=1,
        data_dir=data_dir,
        service_key="bench-service-key",
    )
    return create_app(settings)


async def time_endpoints(
    clients: dict[int, httpx.AsyncClient], rounds: int, per_round: int
) -> dict[int, dict[str, list[float]]]:
    """Microseconds per request, per size and endpoint; sizes alternate within every round."""
    timings: dict[int, dict[str, list[float]]] = {size: {name: [] for name in ENDPOINTS} for size in clients}
    for _ in range(rounds):
        for size, client in clients.items():
            for name, (method, path, kwargs) in ENDPOINTS.items():
                for _ in range(per_round):
                    started = time.perf_counter()
                    answer = await client.request(method, path, **kwargs)
                    elapsed = time.perf_counter() - started
                    if answer.status_code != 200:
                        raise SystemExit(f"{name} at {size} events answered {answer.status_code}: {answer.text[:200]}")
                    timings[size][name].append(elapsed * 1e6)
    return timings


def time_queries(data_dir: Path, repeats: int) -> dict[str, dict[str, float]]:
    """Median microseconds of the database work alone: the aggregates' reads, and the log scans they replace."""
    db = Database(data_dir / "views-bench.sqlite3", LOG_SCHEMA)
    reads = {
        "counts": lambda: aggregates.counts(db, FEED_VIDEOS),
        "history": lambda: aggregates.history(db, USER, 30),
        "trending": lambda: aggregates.trending(db, 40),
    }
    try:
        medians: dict[str, dict[str, float]] = {"aggregates": {}, "from_the_log": {}}
        for name in ENDPOINTS:
            sql, params = FROM_THE_LOG[name]
            for kind, work in (("aggregates", reads[name]), ("from_the_log", functools.partial(db.read, sql, params))):
                samples = []
                for _ in range(repeats):
                    started = time.perf_counter()
                    work()
                    samples.append((time.perf_counter() - started) * 1e6)
                medians[kind][name] = statistics.median(samples)
        return medians
    finally:
        db.close()


async def measure(dirs: dict[int, Path], rounds: int, per_round: int) -> dict[int, dict[str, list[float]]]:
    clients = {
        size: httpx.AsyncClient(transport=httpx.ASGITransport(app=app_for(d)), base_url="http://127.0.0.1")
        for size, d in dirs.items()
    }
    try:
        for client in clients.values():  # warm-up: first-request costs (imports, caches) are not the data's
            for method, path, kwargs in ENDPOINTS.values():
                for _ in range(20):
                    await client.request(method, path, **kwargs)
        return await time_endpoints(clients, rounds, per_round)
    finally:
        for client in clients.values():
            await client.aclose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=50)
    args = parser.parse_args()
    if not 1_000 <= args.small < args.large <= 5_000_000:
        parser.error("need 1000 <= --small < --large <= 5000000")
    with tempfile.TemporaryDirectory(prefix="blackout-growth-") as scratch:
        dirs = {size: Path(scratch) / str(size) for size in (args.small, args.large)}
        loads = {}
        for size, d in dirs.items():
            loads[size] = bulk_load(d, size)
            print(f"{size:>9,} events: loaded in {loads[size][0]:.1f} s, aggregates built in {loads[size][1]:.2f} s")
        timings = asyncio.run(measure(dirs, args.rounds, args.per_round))
        queries = {size: time_queries(d, repeats=args.rounds * 10) for size, d in dirs.items()}
    small, large = args.small, args.large
    figures: dict[str, dict[str, Any]] = {}
    met = True
    print(
        f"\n{'endpoint':<10}{'median @' + format(small, ','):>16}{'median @' + format(large, ','):>18}{'ratio':>8}"
        f"{'query alone':>16}{'ratio':>8}{'from the log (before)':>30}"
    )
    for name in ENDPOINTS:
        a, b = statistics.median(timings[small][name]), statistics.median(timings[large][name])
        ratio = b / a
        qa, qb = queries[small]["aggregates"][name], queries[large]["aggregates"][name]
        la, lb = queries[small]["from_the_log"][name], queries[large]["from_the_log"][name]
        met &= ratio <= GOAL
        figures[name] = {
            "median_us": {str(small): round(a, 1), str(large): round(b, 1)},
            "ratio": round(ratio, 3),
            "query_us": {str(small): round(qa, 1), str(large): round(qb, 1)},
            "query_ratio": round(qb / qa, 3),
            "from_the_log_us": {str(small): round(la, 1), str(large): round(lb, 1)},
        }
        print(
            f"{name:<10}{a:>13.0f} us{b:>15.0f} us{ratio:>7.2f}x{qa:>8.0f}->{qb:.0f} us{qb / qa:>7.2f}x"
            f"{la:>14.0f} -> {lb:.0f} us"
        )
    worst = max(figures, key=lambda n: figures[n]["ratio"])
    print(
        results.verdict(
            f"cost at {large:,} / at {small:,} events (worst: {worst})",
            f"{figures[worst]['ratio']:.2f}x",
            f"<= {GOAL}x",
            met,
        )
    )
    path = results.save(
        "data_growth",
        {
            "goal": {"max_ratio": GOAL},
            "met": met,
            "sizes": [small, large],
            "endpoints": figures,
            "how": "in-process ASGI (httpx.ASGITransport), median of rounds x per-round requests, sizes alternating",
            "load_seconds": {str(s): round(v[0], 2) for s, v in loads.items()},
            "aggregate_build_seconds": {str(s): round(v[1], 2) for s, v in loads.items()},
        },
    )
    print(f"saved {path}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
