"""An AIMD concurrency limit: one more slot per window while answers are fast, x factor when they are slow.

Like TCP congestion control: a service can hold only so many requests in flight before each one waits
on the others (CPU, threads, downstream); past that point latency grows and goodput falls. Answers are
judged per window (as long as the latency target): when their mean latency exceeds the target the limit
shrinks multiplicatively, otherwise a limit that was in use grows by one. The mean, not every slow
answer: on a busy machine a few slow answers are noise, a slow window is queueing. With a ``Dimmer``, a slow
window with the limit in use dims first and shrinks the limit only once the dimmer is at its floor, and a fast
window brightens it only when the limit refused nobody (services/common/overload/dimmer.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from services.common.overload.dimmer import Dimmer
from services.common.overload.policy import AdmissionPolicy


class AIMDLimit:
    def __init__(
        self, policy: AdmissionPolicy, clock: Callable[[], float] = time.monotonic, dimmer: Dimmer | None = None
    ) -> None:
        self.policy = policy
        self.dimmer = dimmer
        self.limit = float(policy.initial_limit)
        self._clock = clock
        self._window_end = clock() + policy.latency_target_s
        self._latency_sum = 0.0
        self._answers = 0
        self._busiest = 0
        self._refused = False

    def on_refusal(self) -> None:
        """A request was refused in this window: fast windows give requests back before freshness."""
        self._refused = True

    @property
    def current(self) -> int:
        return int(self.limit)

    def on_answer(self, latency_s: float, in_flight: int, waiting_s: float = 0.0) -> None:
        """One request answered after ``latency_s`` while ``in_flight`` requests (it included) were held;
        ``waiting_s``: how long a new request now waits before it is even read (the event loop's lag)."""
        self._latency_sum += latency_s
        self._answers += 1
        self._busiest = max(self._busiest, in_flight)
        now = self._clock()
        if now < self._window_end:
            return
        p = self.policy
        in_use = self._busiest * 2 >= self.limit
        if self._latency_sum / self._answers > p.latency_target_s or waiting_s > p.loop_lag_target_s:
            # Slow with the limit in use is overload: dim first. Slow with few requests held is one slow
            # dependency (or one fault-injected request): dimming the next requests would not help them.
            if not (in_use and self.dimmer is not None and self.dimmer.dim()):
                self.limit = max(float(p.min_limit), self.limit * p.decrease_factor)
        else:
            # Requests first, then freshness: while the limit still refuses, the dimmer stays where it is (it
            # would otherwise brighten in the fast windows a smaller limit buys, and the mix would swing).
            if self.dimmer is not None and not self._refused:
                self.dimmer.brighten()
            if in_use:  # only a limit that is in use earns more room
                self.limit = min(float(p.max_limit), self.limit + 1.0)
        self._window_end = now + p.latency_target_s
        self._latency_sum, self._answers, self._busiest, self._refused = 0.0, 0, 0, False
