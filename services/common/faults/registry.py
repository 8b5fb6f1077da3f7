"""The faults active on one instance, each on a lease: it expires by itself ``lease_s`` after its last PUT.

Leases are what keep chaos safe: a controller that dies (or loses contact) leaves nothing behind, since
every lookup first drops the faults whose lease ran out (and logs it), and a sweeper does the same once
a second so the gauge and the log say so even on an instance that receives no traffic.

A quiet fault (`FaultSpec.quiet`, a hidden-fault exercise's) acts the same but is named nowhere the team
reads: no log line, no count in `blackout_faults_active` or `blackout_fault_injections_total` (both by kind,
both on the open /metrics), and its synthetic 503 looks like any other. The admin listing still shows it.

The client side (`before_attempt`) runs inside each attempt's timeout in `DependencyClient._attempt`:
latency waits, a blackhole waits forever (the caller's timeout fires, as with a dead host), an error
answers a synthetic 503 without sending anything. The server side (`brownout`) is awaited by
`BrownoutMiddleware` before each request it delays.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from services.common.faults.model import Fault, FaultSpec
from services.common.metrics import FAULT_INJECTIONS, FAULTS_ACTIVE

# Warnings, so they reach the instance log (the runner configures no logging): the fault timeline is evidence.
log = logging.getLogger("blackout.faults")

FAULT_HEADER = "X-Blackout-Fault"
SWEEP_EVERY_S = 1.0


class FaultRegistry:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """``clock`` runs the leases, ``sleep`` the injected delays: both injectable, and public so a test
        can replace them on the registry a running app already shares with its clients."""
        self.clock = clock
        self.sleep = sleep
        self._faults: dict[str, Fault] = {}
        self._login_tokens: dict[str, tuple[float, float]] = {}  # login_limit id -> (tokens, when counted)

    # -- the admin side --------------------------------------------------------------------------
    def put(self, fault_id: str, spec: FaultSpec) -> Fault:
        """Add the fault, or replace the one with this id and restart its lease (a renewal)."""
        self.expire()
        old = self._faults.pop(fault_id, None)
        if old is not None:
            _count(old, -1)
        rng = random.Random(spec.seed) if spec.seed is not None else random.Random()
        if old is not None and old.spec == spec:
            rng = old.rng  # a plain renewal continues the same random sequence
        fault = Fault(fault_id, spec, self.clock() + spec.lease_s, rng)
        self._faults[fault_id] = fault
        _count(fault, 1)
        if (old is None or old.spec != spec) and not spec.quiet:
            described = spec.model_dump(exclude_defaults=True)
            log.warning("fault %s injected: %s for %.3g s", fault_id, described, spec.lease_s)
        return fault

    def remove(self, fault_id: str) -> bool:
        self.expire()
        fault = self._faults.pop(fault_id, None)
        self._login_tokens.pop(fault_id, None)
        if fault is None:
            return False
        _count(fault, -1)
        if not fault.spec.quiet:
            log.warning("fault %s removed", fault_id)
        return True

    def clear(self) -> int:
        self.expire()
        removed = len(self._faults)
        for fault_id in list(self._faults):
            self.remove(fault_id)
        return removed

    def active(self) -> list[dict[str, Any]]:
        """Every live fault with the seconds its lease has left."""
        self.expire()
        now = self.clock()
        return [fault.describe(now) for fault in self._faults.values()]

    def expires_in_s(self, fault: Fault) -> float:
        return max(0.0, fault.expires_at - self.clock())

    def expire(self) -> None:
        """Drop every fault whose lease ran out."""
        if not self._faults:
            return
        now = self.clock()
        for fault_id, fault in list(self._faults.items()):
            if fault.expires_at <= now:
                del self._faults[fault_id]
                _count(fault, -1)
                if not fault.spec.quiet:
                    log.warning("fault %s (%s) expired: its lease was not renewed", fault_id, fault.kind)

    async def sweep_forever(self) -> None:
        """Expire faults once a second even with no traffic (run by the app for its lifetime)."""
        while True:
            await asyncio.sleep(SWEEP_EVERY_S)
            self.expire()

    # -- the client side -------------------------------------------------------------------------
    async def before_attempt(self, target: str) -> httpx.Response | None:
        """Act on one attempt to ``target``; a synthetic 503 stands for the answer when one is drawn.

        Called inside the attempt's timeout: latency delays it, a blackhole never returns.
        """
        if not self._faults:
            return None
        self.expire()
        matching = [fault for fault in self._faults.values() if fault.applies_to(target)]
        for fault in matching:
            if fault.kind == "latency":
                _acted(fault)
                await self.sleep(fault.delay_s())
        for fault in matching:
            if fault.kind == "blackhole":
                _acted(fault)
                await asyncio.Event().wait()  # a partition: only the caller's timeout ends this
        for fault in matching:
            if fault.kind == "error" and fault.draws_error():
                _acted(fault)
                if fault.spec.quiet:
                    return httpx.Response(503, json={"detail": "service unavailable"})
                return httpx.Response(
                    503,
                    headers={FAULT_HEADER: fault.id},
                    json={"detail": f"injected fault {fault.id}: error"},
                )
        return None

    # -- the server side -------------------------------------------------------------------------
    def login_wait_s(self) -> float | None:
        """A token bucket per login_limit (a second's worth of burst): None admits this login, else the
        seconds until the next one may pass (its Retry-After)."""
        if not self._faults:
            return None
        self.expire()
        now = self.clock()
        for fault in self._faults.values():
            if fault.kind != "login_limit":
                continue
            rate = fault.spec.rate_per_s
            burst = max(1.0, rate)
            tokens, then = self._login_tokens.get(fault.id, (burst, now))
            tokens = min(burst, tokens + (now - then) * rate)
            if tokens < 1.0:
                self._login_tokens[fault.id] = (tokens, now)
                return (1.0 - tokens) / rate if rate > 0 else 1.0
            self._login_tokens[fault.id] = (tokens - 1.0, now)
        return None

    async def brownout(self) -> None:
        """Delay one incoming request by every active brownout (no-op without one)."""
        if not self._faults:
            return
        self.expire()
        delay = 0.0
        for fault in list(self._faults.values()):
            if fault.kind == "brownout":
                _acted(fault)
                delay += fault.delay_s()
        if delay > 0:
            await self.sleep(delay)


def _count(fault: Fault, change: int) -> None:
    """The active-faults gauge, a quiet fault left out."""
    if not fault.spec.quiet:
        FAULTS_ACTIVE.labels(fault.kind).inc(change)


def _acted(fault: Fault) -> None:
    """The injections counter, a quiet fault left out."""
    if not fault.spec.quiet:
        FAULT_INJECTIONS.labels(fault.kind).inc()
