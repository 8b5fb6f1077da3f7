"""Failed logins counted per key (an account at auth, a client address at the gateway): after
``max_failures`` within ``window_s`` the key is locked until the oldest of them leaves the window.

Only failures count, so a client that logs in correctly (the load tests: thousands of logins from
127.0.0.1) never trips it. Hand-written rather than a rate-limit library (``limits``): those count every
hit; here a success must cost nothing and only a failure is recorded, in a few lines, in memory.
State is per process: each auth instance (one per data center) counts on its own.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

# On auth's 429 for a locked account: tells the gateway it is a lockout to pass on, not load being shed.
LOCKOUT_HEADER = "X-Blackout-Lockout"


class FailureLimiter:
    def __init__(
        self,
        max_failures: int,
        window_s: float,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_keys = max_keys  # bounded memory: the least recently failed keys are forgotten first
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()  # auth's login runs in the thread pool

    def retry_after(self, key: str) -> int:
        """Seconds until ``key`` may try again; 0 when it may now."""
        with self._lock:
            times = self._recent(key)
            if times is None or len(times) < self.max_failures:
                return 0
            return max(1, math.ceil(times[0] + self.window_s - self._clock()))

    def failed(self, key: str) -> None:
        with self._lock:
            times = self._recent(key)
            if times is None:
                times = self._failures[key] = deque(maxlen=self.max_failures)
            times.append(self._clock())
            self._failures.move_to_end(key)
            if len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)

    def _recent(self, key: str) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        horizon = self._clock() - self.window_s
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times
