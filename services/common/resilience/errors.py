"""Errors raised by the resilience primitives, so callers can tell *why* a call was refused."""

from __future__ import annotations

from services.common.errors import BlackoutError


class CircuitOpen(BlackoutError):
    """The breaker refused the call without running it (open, or a half-open trial is already in flight)."""

    def __init__(self, name: str, state: str) -> None:
        super().__init__(f"circuit '{name}' is {state}: call short-circuited")
        self.name = name
        self.state = state


class BulkheadFull(BlackoutError):
    """Every slot of the bulkhead is taken; the call is rejected at once rather than queued."""

    def __init__(self, max_concurrent: int) -> None:
        super().__init__(f"bulkhead full: {max_concurrent} calls already in flight")
        self.max_concurrent = max_concurrent


class RetryBudgetExhausted(BlackoutError):
    """A retry was wanted but the retry budget has no token left for it."""


class DeadlineExceeded(BlackoutError):
    """The request's propagated deadline has passed; starting (more) work would be wasted."""
