"""Per-dependency resilience state (breakers per target, bulkhead, retry budget) built from one policy.

A `DependencyClient` holds one `Guards` and rebuilds it when the profile in force hands it a different
`DependencyPolicy` (a live swap). Calls already in flight finish on the guards they started with; the
next call gets fresh ones built from the new policy: breakers start closed, the budget full, the
bulkhead empty. A swap to an *equal* policy keeps the state (re-applying a profile resets nothing).
"""
from __future__ import annotations

import time
from collections.abc import Callable

from services.common.metrics import BREAKER_STATE, RETRY_BUDGET
from services.common.policy import DependencyPolicy
from services.common.resilience import AsyncCircuitBreaker, Bulkhead, RetryBudget

BREAKER_STATE_VALUES = {"closed": 0, "half-open": 1, "open": 2}


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
        """One logical call: earns the budget its share of a retry."""
        if self.budget is not None:
            self.budget.deposit()
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

    def _gauge_hook(self, target: str) -> Callable[[str, str, str], None]:
        gauge = BREAKER_STATE.labels(self.dependency, target)

        def on_change(name: str, old: str, new: str) -> None:
            if not self.retired:
                gauge.set(BREAKER_STATE_VALUES.get(new, 0))

        return on_change
