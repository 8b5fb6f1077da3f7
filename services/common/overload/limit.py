"""An AIMD concurrency limit: grows by one per limit's worth of fast answers, shrinks when answers are slow.

Like TCP congestion control: a service can hold only so many requests in flight before each one waits
on the others (CPU, threads, downstream); past that point latency grows and goodput falls. The limit
probes upward while answers stay under the latency target and backs off multiplicatively when they do
not, at most once per target interval (a burst of slow answers from one moment is one signal, not fifty).
"""
from __future__ import annotations

import time
from collections.abc import Callable

from services.common.overload.policy import AdmissionPolicy


class AIMDLimit:
    def __init__(self, policy: AdmissionPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self.limit = float(policy.initial_limit)
        self._clock = clock
        self._last_decrease = float("-inf")

    @property
    def current(self) -> int:
        return int(self.limit)

    def on_answer(self, latency_s: float, in_flight: int) -> None:
        """One request answered after ``latency_s`` while ``in_flight`` requests (it included) were held."""
        p = self.policy
        if latency_s > p.latency_target_s:
            now = self._clock()
            if now - self._last_decrease >= p.latency_target_s:
                self._last_decrease = now
                self.limit = max(float(p.min_limit), self.limit * p.decrease_factor)
        elif in_flight * 2 >= self.limit:  # only a limit that is in use earns more room
            self.limit = min(float(p.max_limit), self.limit + 1.0 / self.limit)
