"""Admission control: each instance holds at most an adaptive number of requests; the rest get a fast 503.

A request that cannot be served well is refused at once (503, ``Retry-After``) instead of queueing: under
overload a queue only makes every answer late, and work done for a caller that has given up is wasted
(the congestion collapse). Requests have priorities: health checks, metrics and admin routes are never
refused (the balancer and the supervisor must see the instance alive); logins may hold only a small share
of the limit, so a login storm (each login ~55 ms of scrypt) cannot starve feeds; everything else shares
the rest. The limit adapts (``AIMDLimit``) to the latency of non-login answers and to how long new requests
wait to be read (``LoopLag``): the queue in front of the app, which the app itself never sees.

Pure ASGI and outermost: refusing costs a counter and a short answer, nothing else.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from services.common.overload.dimmer import Dimmer
from services.common.overload.lag import LoopLag
from services.common.overload.limit import AIMDLimit
from services.common.overload.metrics import ADMISSION_LIMIT, ADMITTED_IN_FLIGHT, SHED
from services.common.overload.policy import AdmissionPolicy

CRITICAL_PREFIXES = ("/healthz", "/metrics", "/admin")
LOGIN_PATHS = frozenset({"/login"})


def priority_of(path: str) -> str:
    if path.startswith(CRITICAL_PREFIXES):
        return "critical"
    return "login" if path in LOGIN_PATHS else "normal"


class AdmissionMiddleware:
    def __init__(
        self,
        app: Any,
        policy: Callable[[], AdmissionPolicy],
        clock: Callable[[], float] = time.monotonic,
        dimmer: Dimmer | None = None,
    ) -> None:
        """``policy`` is read per request: a profile swapped live turns admission on or off at once. ``dimmer``:
        judged by the limit's windows before the limit itself (the app asks it which requests get optional work)."""
        self.app = app
        self.policy = policy
        self.clock = clock
        self.dimmer = dimmer
        self.limiter: AIMDLimit | None = None
        self.in_flight = {"normal": 0, "login": 0}
        self.lag = LoopLag()

    def _limiter(self, policy: AdmissionPolicy) -> AIMDLimit:
        if self.limiter is None or self.limiter.policy != policy:
            self.limiter = AIMDLimit(policy, self.clock, self.dimmer)
        return self.limiter

    def refusal(self, priority: str, policy: AdmissionPolicy, limit: int) -> str | None:
        """Why a request of this priority is refused now, or None to admit it."""
        if self.in_flight["normal"] + self.in_flight["login"] >= limit:
            return f"overloaded: {limit} requests in flight already"
        if priority == "login":
            login_limit = max(1, int(limit * policy.login_share))
            if self.in_flight["login"] >= login_limit:
                return f"overloaded: {login_limit} logins in flight already"
        return None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = self.policy()
        priority = priority_of(scope.get("path", ""))
        if priority == "critical":
            await self.app(scope, receive, send)
            return
        # Requests are counted even while admission is off, so turning it on live sees the real load.
        limiter = self._limiter(policy) if policy.enabled else None
        if limiter is not None:
            self.lag.watch()
        if limiter is not None and (reason := self.refusal(priority, policy, limiter.current)) is not None:
            limiter.on_refusal()
            SHED.labels(priority).inc()
            await _refuse(send, reason, policy.retry_after_s)
            return
        self.in_flight[priority] += 1
        held = self.in_flight["normal"] + self.in_flight["login"]
        gauge = ADMITTED_IN_FLIGHT.labels(priority)
        gauge.inc()
        started = self.clock()
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight[priority] -= 1
            gauge.dec()
            if limiter is not None and priority != "login":  # a login is slow by design (scrypt)
                limiter.on_answer(self.clock() - started, held, self.lag.lag_s)
                ADMISSION_LIMIT.set(limiter.current)


async def _refuse(send: Any, reason: str, retry_after_s: int) -> None:
    body = json.dumps({"detail": reason}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(retry_after_s).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
