"""What the control room shows per instance beyond the controller's status: is it answering (/healthz), which
profile it runs, its circuit breakers' states and how long its calls to each dependency took lately (from its
/metrics), probed concurrently with short timeouts so a dark instance costs one timeout, not a stall."""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from chaos.instance_client import PROBE_S, InstanceClient
from chaos.runtime.base import Runtime
from services.common.api import HEALTHZ

CACHE_S = 1.0  # several tabs polling cost the services one probe a second
_BREAKER = re.compile(r'^blackout_breaker_state\{dependency="([^"]*)",target="([^"]*)"\} ([0-9.]+)$', re.M)
STATES = {0: "closed", 1: "half-open", 2: "open"}
_CALLS = re.compile(
    r'^blackout_dependency_call_duration_seconds_(sum|count)\{dependency="([^"]*)"\} ([0-9.e+-]+)$', re.M
)
CALLS_S = 15.0  # call durations are averaged over about this long: a slow dependency shows within seconds
Totals = dict[str, tuple[float, float]]  # dependency -> (seconds, calls) since the instance started


class InstanceProbe:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="room-probe")
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._totals: dict[str, deque[tuple[float, Totals]]] = {}  # instance -> (when, totals), oldest first
        self._lock = threading.Lock()

    def instances(self) -> dict[str, dict[str, Any]]:
        """The runtime's status, always fresh (power shows at once), with the probes' findings (cached)."""
        status = self.runtime.status()
        if self._cached and time.monotonic() - self._cached[0] < CACHE_S:
            probed = self._cached[1]
        else:
            by_port = {str(info["port"]): name for name, info in status.items()}
            names = [name for name, info in status.items() if info["state"] == "running"]
            probed = dict(zip(names, self._pool.map(lambda n: _probe(status[n]["port"], by_port), names), strict=True))
            for name, found in probed.items():
                totals = found.pop("totals", None)  # none from an instance that did not answer: nothing to compare
                found["calls"] = [] if totals is None else self._recent_calls(name, totals)
            self._cached = (time.monotonic(), probed)
        down = {"healthy": False, "breakers": [], "calls": []}
        return {
            name: {**info, **(probed.get(name, down) if info["state"] == "running" else down)}
            for name, info in status.items()
        }

    def _recent_calls(self, name: str, totals: Totals) -> list[dict[str, Any]]:
        """Per dependency, the mean duration of this instance's calls between its oldest snapshot within CALLS_S
        and now (none before a second snapshot; a restarted instance, whose totals fell, starts over)."""
        now = time.monotonic()
        with self._lock:
            history = self._totals.setdefault(name, deque())
            if history and any(totals.get(d, (0.0, 0.0))[1] < c for d, (_, c) in history[-1][1].items()):
                history.clear()
            while len(history) > 1 and history[1][0] <= now - CALLS_S:
                history.popleft()
            oldest = history[0][1] if history else None
            history.append((now, totals))
        if oldest is None:
            return []
        calls = []
        for dependency, (seconds, count) in sorted(totals.items()):
            before_s, before_n = oldest.get(dependency, (0.0, 0.0))
            if count > before_n:
                mean_ms = 1000 * (seconds - before_s) / (count - before_n)
                calls.append({"dependency": dependency, "calls": int(count - before_n), "mean_ms": round(mean_ms, 1)})
        return calls

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _probe(port: int, by_port: dict[str, str]) -> dict[str, Any]:
    base = f"http://127.0.0.1:{port}"
    out: dict[str, Any] = {"healthy": False, "breakers": []}
    try:
        with InstanceClient(PROBE_S) as client:
            health = client.get(base + HEALTHZ)
            out["healthy"] = health.status_code == 200
            out["profile"] = health.json().get("profile") if out["healthy"] else None
            metrics = client.get(base + "/metrics").text
    except (httpx.HTTPError, ValueError):
        return out
    totals: dict[str, list[float]] = {}
    for kind, dependency, value in _CALLS.findall(metrics):
        totals.setdefault(dependency, [0.0, 0.0])[kind == "count"] = float(value)
    out["totals"] = {d: (s, n) for d, (s, n) in totals.items()}
    for dependency, target, value in _BREAKER.findall(metrics):
        port_of_target = target.rsplit(":", 1)[-1]
        out["breakers"].append(
            {
                "dependency": dependency,
                "target": by_port.get(port_of_target, target),
                "state": STATES.get(int(float(value)), value),
            }
        )
    return out
