"""A retry budget (Finagle / Google SRE style): retries may add at most ``ratio`` extra load.

Why: per-request retry counts multiply under an outage (3 attempts at every layer of a 3-deep
call graph is 27x). A budget caps retries *in aggregate*: every original request deposits
``ratio`` tokens, every retry withdraws one, so retries stay below ``ratio`` x request volume.

Two pools back the budget:

* earned tokens, from deposits, which expire after about ``window_s`` so that a burst of old
  traffic cannot fund a retry storm much later. They are kept in ten time slots per window, so
  memory is bounded whatever the request rate;
* a floor of ``min_retries_per_s``, a bucket refilling at that rate (holding at most one second's
  worth, and at least one token), so a quiet client can still retry now and then.

Time comes from an injectable monotonic ``clock`` so tests can move it without sleeping.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from services.common.policy import RetryBudgetPolicy

# Float sums of ``ratio`` drift (0.1 added 100 times is 9.999...), so compare with a tolerance.
_EPS = 1e-9
_SLOTS_PER_WINDOW = 10


class RetryBudget:
    def __init__(
        self,
        ratio: float = 0.1,
        min_retries_per_s: float = 1.0,
        *,
        window_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ratio < 0 or min_retries_per_s < 0 or window_s <= 0:
            raise ValueError("ratio and min_retries_per_s must be >= 0, window_s > 0")
        self._ratio = ratio
        self._rate = min_retries_per_s
        self._slot_s = window_s / _SLOTS_PER_WINDOW
        self._clock = clock
        # deque of [slot index, tokens], oldest first
        self._earned: deque[list[float]] = deque()
        self._floor_cap = max(1.0, min_retries_per_s) if min_retries_per_s > 0 else 0.0
        self._floor = self._floor_cap  # start full: a freshly started client may retry
        self._floor_at = clock()

    @classmethod
    def from_policy(
        cls,
        policy: RetryBudgetPolicy,
        *,
        window_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> RetryBudget:
        """``policy.enabled`` is the caller's decision (whether to consult a budget at all)."""
        return cls(policy.ratio, policy.min_retries_per_s, window_s=window_s, clock=clock)

    def deposit(self) -> None:
        """Record one original request (not a retry)."""
        if self._ratio == 0:
            return
        slot = self._refresh()
        if self._earned and self._earned[-1][0] == slot:
            self._earned[-1][1] += self._ratio
        else:
            self._earned.append([slot, self._ratio])

    def try_withdraw(self) -> bool:
        """Take one token for a retry; False means "do not retry"."""
        self._refresh()
        if self._earned_total() + self._floor + _EPS < 1.0:
            return False
        need = 1.0
        while need > _EPS and self._earned:  # spend the oldest (soonest to expire) first
            bucket = self._earned[0]
            take = min(bucket[1], need)
            bucket[1] -= take
            need -= take
            if bucket[1] <= _EPS:
                self._earned.popleft()
        if need > _EPS:
            self._floor = max(0.0, self._floor - need)
        return True

    @property
    def level(self) -> float:
        """Tokens available now (earned + floor), for a gauge."""
        self._refresh()
        return self._earned_total() + self._floor

    def _earned_total(self) -> float:
        return sum(tokens for _, tokens in self._earned)

    def _refresh(self) -> int:
        """Expire old deposits and refill the floor; returns the current slot index."""
        now = self._clock()
        slot = int(now // self._slot_s)
        while self._earned and self._earned[0][0] <= slot - _SLOTS_PER_WINDOW:
            self._earned.popleft()
        elapsed = max(0.0, now - self._floor_at)
        self._floor = min(self._floor_cap, self._floor + elapsed * self._rate)
        self._floor_at = now
        return slot
