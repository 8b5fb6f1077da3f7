"""Retry schedules built from a profile's RetryPolicy, as tenacity objects.

Why full jitter: after an outage every client retries at once; deterministic exponential backoff
keeps them in lock-step, so each retry wave hits the recovering service together. Drawing the
wait uniformly from [0, base * 2**n] (capped) spreads the wave out (AWS "full jitter").

Why ``before_retry`` is a stop condition: it is consulted only once tenacity has decided a retry
is wanted and the attempt limit is not reached, so a retry-budget token is withdrawn exactly when
a retry will really happen; returning False stops and re-raises the last error.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_any,
    wait_exponential,
    wait_none,
    wait_random_exponential,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from services.common.policy import RetryPolicy


def wait_strategy(policy: RetryPolicy) -> wait_base:
    """Wait before retry n (n = 1, 2, ...): none -> 0; exponential -> min(max_s, base_s * 2**(n-1)),
    or a uniform draw from [0, that] with full jitter."""
    if policy.backoff == "none":
        return wait_none()
    if policy.jitter == "full":
        return wait_random_exponential(multiplier=policy.base_s, max=policy.max_s)
    return wait_exponential(multiplier=policy.base_s, max=policy.max_s)


def backoff_s(policy: RetryPolicy, retry: int, draw: Callable[[float, float], float] = random.uniform) -> float:
    """The wait before retry ``retry`` (1 = the first retry): exactly ``wait_strategy(policy)``'s, without
    building tenacity's objects, for a hot path that retries rarely (``DependencyClient``)."""
    if policy.backoff == "none":
        return 0.0
    high = min(policy.max_s, policy.base_s * 2 ** (retry - 1))
    return draw(0.0, high) if policy.jitter == "full" else high


class _stop_unless_allowed(stop_base):
    """Stop when ``before_retry()`` refuses (e.g. the retry budget is empty)."""

    def __init__(self, before_retry: Callable[[], bool]) -> None:
        self._before_retry = before_retry

    def __call__(self, retry_state: RetryCallState) -> bool:
        return not self._before_retry()


def retrying(
    policy: RetryPolicy,
    retry_if: Callable[[BaseException], bool],
    before_retry: Callable[[], bool] | None = None,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncRetrying:
    """``async for attempt in retrying(...): with attempt: ...`` (or ``await retrying(...)(fn)``).

    At most ``policy.attempts`` attempts; only exceptions for which ``retry_if`` is true are
    retried; the last error is re-raised as itself (never tenacity's RetryError). ``sleep`` is
    injectable so tests can record the waits instead of spending them.
    """
    stop: stop_base = stop_after_attempt(policy.attempts)
    if before_retry is not None:
        # stop_any short-circuits in order: the attempt limit is checked first, so the budget
        # is not charged for a retry that would not happen anyway.
        stop = stop_any(stop, _stop_unless_allowed(before_retry))
    return AsyncRetrying(
        sleep=sleep,
        stop=stop,
        wait=wait_strategy(policy),
        retry=retry_if_exception(retry_if),
        reraise=True,
    )
