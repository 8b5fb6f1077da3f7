"""Deadline propagation: each hop passes on how much of the user's time budget is left.

Why the *remaining* budget (milliseconds) rather than an absolute timestamp: services do not
share a clock. Each hop turns the header into an absolute deadline on its own monotonic clock
(held in a contextvar, so it follows the request through awaits and into thread-pool endpoints)
and, when calling onwards, sends what is left at that moment. Work whose caller has already
given up is then refused at the door (504) instead of being done for nobody.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar, Token
from typing import Any

from services.common.resilience.errors import DeadlineExceeded

DEADLINE_HEADER = "X-Blackout-Deadline-Ms"

Clock = Callable[[], float]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Absolute deadline on the monotonic clock; None: this request has no deadline.
_deadline: ContextVar[float | None] = ContextVar("blackout_deadline", default=None)


def parse_header(value: str) -> float:
    """Remaining budget in milliseconds; ValueError (with a reason) when not a finite number."""
    text = value.strip()
    if not text:
        raise ValueError("empty value")
    try:
        ms = float(text)
    except ValueError:
        raise ValueError(f"not a number: {text[:40]!r}") from None
    if not math.isfinite(ms):
        raise ValueError(f"not a finite number: {text[:40]!r}")
    return ms


def set_deadline(budget_s: float, *, clock: Clock = time.monotonic) -> Token[float | None]:
    """Start a budget of ``budget_s`` seconds from now (e.g. at the gateway). Replaces any deadline."""
    return _deadline.set(clock() + budget_s)


def set_deadline_from_header(value: str, *, clock: Clock = time.monotonic) -> None:
    """Adopt the remaining budget an upstream sent. ValueError when the value is invalid."""
    _deadline.set(clock() + parse_header(value) / 1000.0)


def clear_deadline() -> None:
    _deadline.set(None)


def remaining(*, clock: Clock = time.monotonic) -> float | None:
    """Seconds left (negative once passed), or None when there is no deadline."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - clock()


def outgoing_headers(*, clock: Clock = time.monotonic) -> dict[str, str]:
    """Headers for a downstream call: the remaining budget in whole ms (never negative)."""
    left = remaining(clock=clock)
    if left is None:
        return {}
    # Floor, not round: never promise a downstream more time than we have (the epsilon only
    # absorbs float noise such as 799.9999999 for a budget of exactly 800 ms).
    return {DEADLINE_HEADER: str(max(0, math.floor(left * 1000.0 + 1e-6)))}


def check(*, clock: Clock = time.monotonic) -> None:
    """Raise DeadlineExceeded when the deadline has passed (no-op without a deadline)."""
    left = remaining(clock=clock)
    if left is not None and left <= 0:
        raise DeadlineExceeded(f"deadline passed {-left * 1000.0:.0f} ms ago")


class DeadlineMiddleware:
    """Pure-ASGI middleware: adopts the incoming deadline header for the request's duration.

    ``enabled`` is called per request, so a profile swapped live takes effect at once. When
    disabled the header is ignored. No header: the request runs without a deadline.
    """

    def __init__(self, app: ASGIApp, enabled: Callable[[], bool], *, clock: Clock = time.monotonic) -> None:
        self.app = app
        self.enabled = enabled
        self.clock = clock
        self._header_key = DEADLINE_HEADER.lower().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.enabled():
            await self.app(scope, receive, send)
            return
        raw = next((v for k, v in scope.get("headers", []) if k.lower() == self._header_key), None)
        if raw is None:
            await self.app(scope, receive, send)
            return
        try:
            ms = parse_header(raw.decode("latin-1"))
        except ValueError as exc:
            await _send_json(send, 400, {"detail": f"invalid {DEADLINE_HEADER} header: {exc}"})
            return
        if ms <= 0:
            await _send_json(send, 504, {"detail": "deadline exceeded before work started"})
            return
        token = _deadline.set(self.clock() + ms / 1000.0)
        try:
            await self.app(scope, receive, send)
        finally:
            _deadline.reset(token)


async def _send_json(send: Send, status: int, body: dict[str, str]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
