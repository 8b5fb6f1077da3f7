"""An AIMD concurrency limit: one more slot per window while answers are fast, x factor when they are slow.

Like TCP congestion control: a service can hold only so many requests in flight before each one waits
on the others (CPU, threads, downstream); past that point latency grows and goodput falls. Answers are
judged per window (as long as the latency target): when their mean latency exceeds the target the limit
shrinks multiplicatively, otherwise a limit that was in use grows by one. The mean, not every slow
answer: on a busy machine a few slow answers are noise, a slow window is queueing. With a ``Dimmer``, a window
slower than the dimmer's (lower) target with the limit in use dims, and the limit waits; once the dimmer is at
its floor the limit works to its own target; a window fast for both brightens the dimmer when the limit refused
nobody (services/common/overload/dimmer.py).
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
        mean = self._latency_sum / self._answers
        slow = mean > p.latency_target_s or waiting_s > p.loop_lag_target_s
        # The dimmer's target is lower than the limit's: answers dim before they get slow enough to refuse, and
        # before the calls inside them hit their timeouts (breakers opening would degrade at random instead).
        # Only with the limit in use (overload): one slow request alone is a slow dependency or a
        # fault-injected experiment, which dimming the next requests would not help.
        dimmer = self.dimmer
        dim = dimmer is not None and in_use and (slow or mean > dimmer.latency_target_s())
        dimmed = dimmer.dim() if dimmer is not None and dim else False
        if dimmed:
            pass  # this window's slowness is answered by dimming; the limit waits for the next
        elif slow:
            self.limit = max(float(p.min_limit), self.limit * p.decrease_factor)
        else:
            # With the dimmer at its floor the limit works to its own target as without one: a limit held to
            # the dimmer's lower target starved the stack of concurrency (a third less goodput, measured).
            # Requests first, then freshness: while the limit still refuses, the dimmer stays where it is (it
            # would otherwise brighten in the fast windows a smaller limit buys, and the mix would swing).
            if dimmer is not None and not dim and not self._refused:
                dimmer.brighten()
            if in_use:  # only a limit that is in use earns more room
                self.limit = min(float(p.max_limit), self.limit + 1.0)
        self._window_end = now + p.latency_target_s
        self._latency_sum, self._answers, self._busiest, self._refused = 0.0, 0, 0, False
