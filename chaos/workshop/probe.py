"""What the control room shows per instance beyond the controller's status: is it answering (/healthz), which
profile it runs, and its circuit breakers' states (from its /metrics), probed concurrently with short timeouts
so a dark instance costs one timeout, not a stall."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from chaos.instance_client import PROBE_S, InstanceClient
from chaos.runtime.base import Runtime
from services.common.api import HEALTHZ

CACHE_S = 1.0  # several tabs polling cost the services one probe a second
_BREAKER = re.compile(r'^blackout_breaker_state\{dependency="([^"]*)",target="([^"]*)"\} ([0-9.]+)$', re.M)
STATES = {0: "closed", 1: "half-open", 2: "open"}


class InstanceProbe:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="room-probe")
        self._cached: tuple[float, dict[str, Any]] | None = None

    def instances(self) -> dict[str, dict[str, Any]]:
        """The runtime's status, always fresh (power shows at once), with the probes' findings (cached)."""
        status = self.runtime.status()
        if self._cached and time.monotonic() - self._cached[0] < CACHE_S:
            probed = self._cached[1]
        else:
            by_port = {str(info["port"]): name for name, info in status.items()}
            names = [name for name, info in status.items() if info["state"] == "running"]
            probed = dict(zip(names, self._pool.map(lambda n: _probe(status[n]["port"], by_port), names), strict=True))
            self._cached = (time.monotonic(), probed)
        down = {"healthy": False, "breakers": []}
        return {
            name: {**info, **(probed.get(name, down) if info["state"] == "running" else down)}
            for name, info in status.items()
        }

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
