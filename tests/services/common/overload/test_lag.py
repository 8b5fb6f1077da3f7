"""LoopLag: a loop kept busy makes its timer late, and the lag says so; an idle loop shows none."""

from __future__ import annotations

import asyncio
import time

from services.common.overload.lag import LoopLag


async def _measure(busy_s: float) -> float:
    lag = LoopLag()
    lag.watch()
    await asyncio.sleep(0.1)  # idle: timers fire on time
    idle = lag.lag_s
    for _ in range(5):
        time.sleep(busy_s)  # a request hogging the loop (CPU work): every timer behind it is late
        await asyncio.sleep(0)
        await asyncio.sleep(0.025)
    assert idle < 0.01
    return lag.lag_s


def test_a_busy_loop_shows_lag() -> None:
    assert asyncio.run(_measure(0.1)) > 0.03
