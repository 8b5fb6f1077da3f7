"""A bounded closed-loop load generator: N connections, each sending its next request as soon as the
last one was answered, for a fixed time, to 127.0.0.1 only. Saturation throughput, not a user model."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import psutil

MAX_CONNECTIONS = 256
MAX_SECONDS = 120.0


@dataclass
class Rate:
    """What one closed-loop run measured (the warm-up excluded)."""

    url: str
    connections: int
    seconds: float
    ok: int = 0
    degraded: int = 0  # 2xx answers the judge refused (e.g. a feed served from a fallback)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    generator_cpu_percent: float = 0.0  # of one core: a generator near 100% is itself the bottleneck
    load_1m: float = 0.0  # the machine's load average when the run ended (others' work shows here)

    @property
    def per_second(self) -> float:
        return self.ok / self.seconds

    def percentile(self, q: float) -> float | None:
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else None
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[int(q) - 1]

    def summary(self) -> dict:
        return {
            "url": self.url,
            "connections": self.connections,
            "seconds": round(self.seconds, 2),
            "ok": self.ok,
            "degraded": self.degraded,
            "per_second": round(self.per_second, 1),
            "p50_ms": _round(self.percentile(50)),
            "p99_ms": _round(self.percentile(99)),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": dict(self.errors),
            "generator_cpu_percent": round(self.generator_cpu_percent, 1),
            "load_1m": round(self.load_1m, 2),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _seconds(header: str | None) -> float | None:
    try:
        return max(0.0, float(header)) if header is not None else None
    except ValueError:
        return None


def _check_loopback(url: str) -> None:
    if urlsplit(url).hostname != "127.0.0.1":
        raise ValueError(f"load goes to 127.0.0.1 only, not {url}")


async def closed_loop(
    url: str,
    *,
    connections: int = 32,
    seconds: float = 10.0,
    warmup_s: float = 2.0,
    headers: dict[str, str] | None = None,
    timeout_s: float = 10.0,
    judge: Callable[[bytes], bool] | None = None,
) -> Rate:
    """GET ``url`` from ``connections`` concurrent keep-alive connections; count 2xx answers per second
    (only those ``judge(body)`` accepts, when given: a cheap fallback answer is no measure of capacity)."""
    _check_loopback(url)
    if not 1 <= connections <= MAX_CONNECTIONS or not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"connections must be 1..{MAX_CONNECTIONS} and seconds 0..{MAX_SECONDS:g}")
    rate = Rate(url, connections, seconds)
    me = psutil.Process()
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as session:
        start = time.monotonic()
        measure_from, stop_at = start + warmup_s, start + warmup_s + seconds
        cpu_at_start: list[float] = []

        async def worker() -> None:
            while (now := time.monotonic()) < stop_at:
                if now >= measure_from and not cpu_at_start:
                    cpu_at_start.append(sum(me.cpu_times()[:2]))
                sent = time.monotonic()
                try:
                    async with session.get(url) as response:
                        body = await response.read()
                        status = response.status
                        retry_after = _seconds(response.headers.get("Retry-After"))
                except (TimeoutError, aiohttp.ClientError) as exc:
                    status, error, retry_after = 0, type(exc).__name__, None
                else:
                    error = ""
                done = time.monotonic()
                counted = measure_from <= sent and done <= stop_at  # only requests wholly inside the window
                if counted and error:
                    rate.errors[error] += 1
                elif counted:
                    rate.statuses[status] += 1
                if status == 503 and retry_after is not None:
                    # A refused client waits as it is asked (at most a second) instead of asking again at
                    # once: refusals answered at full speed would measure the refusing, not the serving.
                    await asyncio.sleep(min(retry_after, 1.0, max(0.0, stop_at - time.monotonic())))
                if not counted or error:
                    continue
                if 200 <= status < 300:
                    if judge is not None and not judge(body):
                        rate.degraded += 1
                        continue
                    rate.ok += 1
                    rate.latencies_ms.append((done - sent) * 1000.0)

        await asyncio.gather(*(worker() for _ in range(connections)))
        if cpu_at_start:
            rate.generator_cpu_percent = 100.0 * (sum(me.cpu_times()[:2]) - cpu_at_start[0]) / seconds
        rate.load_1m = psutil.getloadavg()[0]
    return rate


def run(url: str, **kwargs: Any) -> Rate:
    """closed_loop on a fresh event loop (uvloop when installed: the generator should cost as little as it can)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(closed_loop(url, **kwargs))
    return uvloop.run(closed_loop(url, **kwargs))
