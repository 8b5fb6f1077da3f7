"""Event-loop lag: how late a timer fires is how long a request that just arrived waits to be read.

Admission control only sees a request once the event loop gets to it; under overload the wait before
that (socket buffers, a loop busy with other work, a CPU shared with other processes) is where queueing
happens. A timer every ``interval`` measures it: the delay past its due time, smoothed (EWMA).
"""

from __future__ import annotations

import asyncio
import time

INTERVAL_S = 0.02
SMOOTHING = 0.3  # weight of the newest sample


class LoopLag:
    def __init__(self) -> None:
        self.lag_s = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(self) -> None:
        """Start measuring on the running loop (once per loop; a new loop in tests restarts it)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self.lag_s = 0.0
            self._schedule(loop)

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        due = time.monotonic() + INTERVAL_S
        loop.call_later(INTERVAL_S, self._tick, loop, due)

    def _tick(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        if loop is not self._loop or loop.is_closed():
            return
        late = max(0.0, time.monotonic() - due)
        self.lag_s += SMOOTHING * (late - self.lag_s)
        self._schedule(loop)
