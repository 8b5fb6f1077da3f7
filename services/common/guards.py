"""Per-dependency resilience state (breakers per target, bulkhead, retry budget) built from one policy,
and the per-attempt deadline helpers `DependencyClient` uses.

A `DependencyClient` holds one `Guards` and rebuilds it when the profile in force hands it a different
`DependencyPolicy` (a live swap). Calls already in flight finish on the guards they started with; the
next call gets fresh ones built from the new policy: breakers start closed, the budget full, the
bulkhead empty. A swap to an *equal* policy keeps the state (re-applying a profile resets nothing).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from services.common.metrics import BREAKER_STATE, RETRY_BUDGET
from services.common.policy import DependencyPolicy
from services.common.resilience import AsyncCircuitBreaker, Bulkhead, RetryBudget, outgoing_headers, remaining

BREAKER_STATE_VALUES = {"closed": 0, "half-open": 1, "open": 2}
GAUGE_EVERY_S = 0.1


class AttemptFailed(Exception):
    """One attempt failed in a way worth retrying (timeout, connection error, 5xx).

    ``by_deadline``: a timeout that fired only because the request's deadline capped it. It says
    nothing about the dependency's health (the breaker does not count it as a failure) and is not
    retried (no time is left).
    """

    def __init__(self, outcome: str, detail: str, by_deadline: bool = False) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail
        self.by_deadline = by_deadline


class OutOfTime(Exception):
    """The deadline passed before the next attempt could be sent; nothing was sent for it."""


def is_dependency_failure(exc: BaseException) -> bool:
    """Worth a retry, and a failure for the breaker: the dependency itself misbehaved."""
    return isinstance(exc, AttemptFailed) and not exc.by_deadline


def attempt_timeout(timeout_s: float, deadline_on: bool) -> tuple[float, bool]:
    """The next attempt's timeout, and whether the deadline (not the policy) set it; OutOfTime if none left."""
    left = remaining() if deadline_on else None
    if left is None or left >= timeout_s:
        return timeout_s, False
    if left <= 0:
        raise OutOfTime(f"deadline passed {-left * 1000.0:.0f} ms ago, before the next attempt")
    return left, True


def sleep_within_deadline(sleep: Callable[[float], Awaitable[None]]) -> Callable[[float], Awaitable[None]]:
    """A backoff that never outlives the deadline (the next attempt then finds no time and stops)."""

    async def capped(seconds: float) -> None:
        left = remaining()
        if left is not None:
            seconds = min(seconds, max(0.0, left))
        await sleep(seconds)

    return capped


def with_deadline_header(kwargs: dict[str, Any]) -> dict[str, Any]:
    """httpx request kwargs plus the time left (computed now, so each attempt sends what is left)."""
    extra = outgoing_headers()
    if not extra:
        return kwargs
    # A plain dict (not httpx.Headers, which costs more to build than the rest of this call): the
    # deadline header's spelling is ours, so no case-insensitive merge is needed.
    return {**kwargs, "headers": {**(kwargs.get("headers") or {}), **extra}}


class Guards:
    def __init__(
        self,
        dependency: str,
        policy: DependencyPolicy,
        targets: list[str],
        *,
        is_failure: Callable[[BaseException], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.dependency = dependency
        self.policy = policy
        self.retired = False  # set once replaced: its breakers' late transitions no longer drive the gauge
        self.bulkhead = Bulkhead.from_policy(policy.bulkhead)
        self.budget = RetryBudget.from_policy(policy.retry_budget, clock=clock) if policy.retry_budget.enabled else None
        self.breakers: dict[str, AsyncCircuitBreaker] = {}
        for target in targets:
            # A fresh set of breakers starts closed: clear whatever the previous policy's left behind.
            BREAKER_STATE.labels(dependency, target).set(0)
            if policy.breaker.enabled:
                self.breakers[target] = AsyncCircuitBreaker.from_policy(
                    f"{dependency}@{target}",
                    policy.breaker,
                    clock=clock,
                    is_failure=is_failure,
                    on_state_change=self._gauge_hook(target),
                )
        self._budget_gauge = RETRY_BUDGET.labels(dependency)
        self._clock = clock
        self._shown_at = float("-inf")
        self._show_budget()

    def matches(self, policy: DependencyPolicy) -> bool:
        """True when these guards were built for ``policy`` (or an equal one, which is then adopted)."""
        if policy is self.policy:
            return True
        if policy == self.policy:
            self.policy = policy  # next time the identity check answers
            return True
        return False

    def breaker(self, target: str) -> AsyncCircuitBreaker | None:
        return self.breakers.get(target)

    def deposit(self) -> None:
        """One logical call: earns the budget its share of a retry. The gauge follows deposits at most
        every GAUGE_EVERY_S (reading the level sums the budget's slots: too dear for every call, and
        nobody scrapes that often); a withdrawal always shows at once."""
        if self.budget is not None:
            self.budget.deposit()
            now = self._clock()
            if now - self._shown_at >= GAUGE_EVERY_S:
                self._show_budget()

    def allow_retry(self) -> bool:
        """Withdraw one retry token; False (stop retrying) when the budget is empty."""
        if self.budget is None:
            return True
        allowed = self.budget.try_withdraw()
        self._show_budget()
        return allowed

    def _show_budget(self) -> None:
        if self.budget is not None and not self.retired:
            self._budget_gauge.set(self.budget.level)
            self._shown_at = self._clock()

    def _gauge_hook(self, target: str) -> Callable[[str, str, str], None]:
        gauge = BREAKER_STATE.labels(self.dependency, target)

        def on_change(name: str, old: str, new: str) -> None:
            if not self.retired:
                gauge.set(BREAKER_STATE_VALUES.get(new, 0))

        return on_change
