"""The calls and failures of the last few seconds, in buckets: what a rate-tripped breaker judges.

pybreaker counts consecutive failures only. On a saturated stack a caller's own slowness times out a run
of calls at once (every call its event loop answered late), which opens a consecutive-count breaker on a
healthy instance; the share of calls that failed over a window tells that burst from an instance that fails
every call (Hystrix's error percentage over a rolling window, resilience4j's failure-rate threshold).
"""

from __future__ import annotations


class FailureWindow:
    """Calls and failures over the last ``window_s`` (in ``buckets`` slices: a slice ages out whole)."""

    def __init__(self, window_s: float, buckets: int = 10) -> None:
        self._slice_s = window_s / buckets
        self._calls = [0] * buckets
        self._failures = [0] * buckets
        self._current = 0  # the slice number (time / slice) the counts at its index belong to

    def add(self, now: float, failed: bool) -> None:
        n = int(now / self._slice_s)
        size = len(self._calls)
        if n != self._current:
            # zero the slices skipped since the last call (all of them after a long quiet)
            for stale in range(max(self._current + 1, n - size + 1), n + 1):
                self._calls[stale % size] = self._failures[stale % size] = 0
            self._current = n
        self._calls[n % size] += 1
        if failed:
            self._failures[n % size] += 1

    def counts(self) -> tuple[int, int]:
        """(calls, failures) in the window as of the last ``add``."""
        return sum(self._calls), sum(self._failures)

    def clear(self) -> None:
        self._calls = [0] * len(self._calls)
        self._failures = [0] * len(self._failures)
