from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from services.common.policy import BreakerPolicy
from services.common.resilience import AsyncCircuitBreaker, CircuitOpen


class Boom(Exception):
    pass


class NotMyFault(Exception):
    pass


class Counting:
    """A dependency stand-in: counts how often it is *invoked* (not just awaited)."""

    def __init__(self, outcome: BaseException | None = None, gate: asyncio.Event | None = None) -> None:
        self.calls = 0
        self.outcome = outcome
        self.gate = gate

    def __call__(self) -> Awaitable[str]:
        self.calls += 1
        return self._run()

    async def _run(self) -> str:
        if self.gate is not None:
            await self.gate.wait()
        if self.outcome is not None:
            raise self.outcome
        return "ok"


async def fail(exc: BaseException | None = None) -> None:
    raise exc or Boom()


async def succeed() -> str:
    return "ok"


async def settle() -> None:
    """Let every ready task run until it blocks (no wall-clock waiting)."""
    for _ in range(5):
        await asyncio.sleep(0)


def make(
    clock: Callable[[], float], threshold: int = 3, timeout: float = 5.0, **kw: Any
) -> tuple[AsyncCircuitBreaker, list[tuple[str, str, str]]]:
    changes: list[tuple[str, str, str]] = []
    cb = AsyncCircuitBreaker(
        "views", threshold, timeout, clock=clock, on_state_change=lambda *c: changes.append(c), **kw
    )
    return cb, changes


async def trip(cb: AsyncCircuitBreaker, n: int) -> None:
    for _ in range(n):
        with pytest.raises(Boom):
            await cb.call(fail)


def test_opens_after_threshold_consecutive_failures_and_reraises_the_original_error(clock):
    async def main() -> None:
        cb, changes = make(clock, threshold=3)
        await trip(cb, 2)
        assert cb.state == "closed"
        with pytest.raises(Boom):  # the tripping call still sees its own error
            await cb.call(fail)
        assert cb.state == "open"
        assert changes == [("views", "closed", "open")]

    asyncio.run(main())


def test_open_short_circuits_without_invoking_the_function(clock):
    async def main() -> None:
        cb, _ = make(clock, threshold=1)
        await trip(cb, 1)
        dep = Counting()
        with pytest.raises(CircuitOpen) as info:
            await cb.call(dep)
        assert dep.calls == 0
        assert info.value.name == "views" and info.value.state == "open"

    asyncio.run(main())


def test_a_success_resets_the_consecutive_failure_count(clock):
    async def main() -> None:
        cb, _ = make(clock, threshold=3)
        await trip(cb, 2)
        assert await cb.call(succeed) == "ok"
        await trip(cb, 2)
        assert cb.state == "closed"
        assert cb.failure_count == 2

    asyncio.run(main())


def test_reset_timeout_follows_the_injected_clock(clock):
    async def main() -> None:
        cb, changes = make(clock, threshold=1, timeout=5.0)
        await trip(cb, 1)
        clock.advance(4.999)
        with pytest.raises(CircuitOpen):
            await cb.call(succeed)
        assert cb.state == "open"
        clock.advance(0.001)
        assert cb.state == "half-open"
        assert changes[-1] == ("views", "open", "half-open")

    asyncio.run(main())


def test_half_open_admits_exactly_one_concurrent_trial_then_closes_on_success(clock):
    async def main() -> None:
        cb, changes = make(clock, threshold=1, timeout=5.0)
        await trip(cb, 1)
        clock.advance(5.0)

        gate = asyncio.Event()
        trial_dep = Counting(gate=gate)
        trial = asyncio.create_task(cb.call(trial_dep))
        await settle()
        assert trial_dep.calls == 1

        others = Counting()
        results = await asyncio.gather(*(cb.call(others) for _ in range(10)), return_exceptions=True)
        assert all(isinstance(r, CircuitOpen) and r.state == "half-open" for r in results)
        assert others.calls == 0

        gate.set()
        assert await trial == "ok"
        assert cb.state == "closed"
        assert await cb.call(succeed) == "ok"
        assert [c[1:] for c in changes] == [("closed", "open"), ("open", "half-open"), ("half-open", "closed")]

    asyncio.run(main())


def test_failed_trial_reopens_and_restarts_the_timer(clock):
    async def main() -> None:
        cb, changes = make(clock, threshold=1, timeout=5.0)
        await trip(cb, 1)
        clock.advance(5.0)
        gate = asyncio.Event()
        trial = asyncio.create_task(cb.call(Counting(Boom(), gate=gate)))
        await settle()
        clock.advance(1.0)  # the trial fails one second into half-open
        gate.set()
        with pytest.raises(Boom):
            await trial
        assert cb.state == "open"
        clock.advance(4.999)  # timer counts from the re-open, not the first open
        assert cb.state == "open"
        clock.advance(0.001)
        assert cb.state == "half-open"
        assert [c[1:] for c in changes] == [
            ("closed", "open"),
            ("open", "half-open"),
            ("half-open", "open"),
            ("open", "half-open"),
        ]

    asyncio.run(main())


def test_many_concurrent_failures_open_once_and_late_failures_do_not_reset_the_timer(clock):
    async def main() -> None:
        cb, changes = make(clock, threshold=5, timeout=5.0)
        first, late = asyncio.Event(), asyncio.Event()
        tasks = [asyncio.create_task(cb.call(Counting(Boom(), gate=first))) for _ in range(5)]
        tasks += [asyncio.create_task(cb.call(Counting(Boom(), gate=late))) for _ in range(15)]
        await settle()
        first.set()
        await settle()
        assert cb.state == "open"

        clock.advance(3.0)
        late.set()  # 15 failures from calls admitted while closed land on an open breaker
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, Boom) for r in results)  # all were admitted, none short-circuited
        assert changes == [("views", "closed", "open")]
        clock.advance(2.0)  # 5 s after the real trip: had a late failure re-opened, still open
        assert cb.state == "half-open"

    asyncio.run(main())


def test_a_stale_success_from_the_closed_era_does_not_decide_the_trial(clock):
    async def main() -> None:
        cb, _ = make(clock, threshold=1, timeout=5.0)
        slow_gate = asyncio.Event()
        slow = asyncio.create_task(cb.call(Counting(gate=slow_gate)))
        await settle()
        await trip(cb, 1)
        clock.advance(5.0)
        trial_gate = asyncio.Event()
        trial = asyncio.create_task(cb.call(Counting(Boom(), gate=trial_gate)))
        await settle()

        slow_gate.set()
        assert await slow == "ok"  # the caller still gets its result...
        assert cb.state == "half-open"  # ...but it does not close the breaker
        with pytest.raises(CircuitOpen):  # and the trial slot is still taken
            await cb.call(succeed)

        trial_gate.set()
        with pytest.raises(Boom):
            await trial
        assert cb.state == "open"

    asyncio.run(main())


def test_excluded_exceptions_pass_through_and_count_as_success(clock):
    async def main() -> None:
        cb, _ = make(clock, threshold=2, is_failure=lambda e: not isinstance(e, NotMyFault))
        await trip(cb, 1)
        with pytest.raises(NotMyFault):
            await cb.call(fail, NotMyFault())
        await trip(cb, 1)
        assert cb.state == "closed"  # the NotMyFault in between reset the count

        await trip(cb, 1)
        assert cb.state == "open"
        clock.advance(5.0)
        with pytest.raises(NotMyFault):
            await cb.call(fail, NotMyFault())
        assert cb.state == "closed"  # a non-failure trial closes the breaker

    asyncio.run(main())


def test_cancelled_trial_frees_the_slot_without_deciding(clock):
    async def main() -> None:
        cb, _ = make(clock, threshold=1, timeout=5.0)
        await trip(cb, 1)
        clock.advance(5.0)
        trial = asyncio.create_task(cb.call(Counting(gate=asyncio.Event())))
        await settle()
        trial.cancel()
        with pytest.raises(asyncio.CancelledError):
            await trial
        assert cb.state == "half-open"
        assert await cb.call(succeed) == "ok"  # the next caller became the trial
        assert cb.state == "closed"

    asyncio.run(main())


def test_lock_is_not_held_while_the_call_is_awaited(clock):
    async def main() -> None:
        cb, _ = make(clock)
        gate = asyncio.Event()
        task = asyncio.create_task(cb.call(Counting(gate=gate)))
        await settle()

        lock = cb._cb._lock

        def other_thread_can_lock() -> bool:
            if lock.acquire(timeout=1.0):
                lock.release()
                return True
            return False

        assert await asyncio.to_thread(other_thread_can_lock)
        gate.set()
        assert await task == "ok"

    asyncio.run(main())


def test_a_failing_state_change_hook_does_not_break_the_breaker(clock):
    def hook(name: str, old: str, new: str) -> None:
        raise RuntimeError("metrics down")

    async def main() -> None:
        cb = AsyncCircuitBreaker("auth", 1, 1.0, clock=clock, on_state_change=hook)
        await trip(cb, 1)
        assert cb.state == "open"
        with pytest.raises(CircuitOpen):
            await cb.call(succeed)
        clock.advance(1.0)
        assert await cb.call(succeed) == "ok"
        assert cb.state == "closed"

    asyncio.run(main())


def test_from_policy_uses_threshold_and_timeout(clock):
    async def main() -> None:
        cb = AsyncCircuitBreaker.from_policy(
            "earnings", BreakerPolicy(enabled=True, failure_threshold=4, reset_timeout_s=2.5), clock=clock
        )
        assert cb.name == "earnings"
        await trip(cb, 3)
        assert cb.state == "closed"
        await trip(cb, 1)
        assert cb.state == "open"
        clock.advance(2.4)
        assert cb.state == "open"
        clock.advance(0.1)
        assert cb.state == "half-open"

    asyncio.run(main())


def test_rejects_nonsense_parameters():
    with pytest.raises(ValueError):
        AsyncCircuitBreaker("x", 0, 1.0)
    with pytest.raises(ValueError):
        AsyncCircuitBreaker("x", 1, 0.0)


# -- failure_rate: a share of the window's calls, not a run of failures --------------------------------------


async def answer(cb: AsyncCircuitBreaker, n: int) -> None:
    for _ in range(n):
        assert await cb.call(succeed) == "ok"


def test_a_burst_of_failures_among_many_answers_does_not_open_a_rate_breaker(clock):
    """A saturated caller times out a run of its calls at once while most calls are answered: a consecutive
    count would open on that healthy instance; the window's rate does not."""

    async def main() -> None:
        cb, changes = make(clock, threshold=5, failure_rate=0.5, window_s=2.0)
        await answer(cb, 40)
        await trip(cb, 12)  # 12 in a row: far past the threshold of 5
        assert cb.state == "closed" and changes == []
        assert cb.failure_count == 12

    asyncio.run(main())


def test_an_instance_failing_every_call_opens_a_rate_breaker_once_its_answers_age_out(clock):
    async def main() -> None:
        cb, changes = make(clock, threshold=5, failure_rate=0.5, window_s=2.0)
        await answer(cb, 20)
        clock.advance(1.0)
        await trip(cb, 19)  # 19 of 39: under half
        assert cb.state == "closed"
        await trip(cb, 1)  # 20 of 40: half
        assert cb.state == "open" and changes == [("views", "closed", "open")]
        clock.advance(5.0)
        await answer(cb, 1)  # the half-open trial closes it, with a window wiped clean
        assert cb.state == "closed" and cb.failure_count == 0

    asyncio.run(main())


def test_answers_older_than_the_window_do_not_dilute_the_rate(clock):
    async def main() -> None:
        cb, _ = make(clock, threshold=5, failure_rate=0.5, window_s=2.0)
        await answer(cb, 100)
        clock.advance(2.5)  # the data center went dark: its answers are history
        await trip(cb, 4)
        assert cb.state == "closed"  # under the threshold: 4 failures are not yet a pattern
        await trip(cb, 1)
        assert cb.state == "open"  # 5 of 5: as soon as a consecutive-count breaker

    asyncio.run(main())


def test_errors_that_are_not_failures_count_as_answers_in_the_rate(clock):
    async def main() -> None:
        cb, _ = make(clock, threshold=2, failure_rate=0.5, window_s=2.0, is_failure=lambda e: isinstance(e, Boom))
        for _ in range(3):
            with pytest.raises(NotMyFault):
                await cb.call(fail, NotMyFault())
        await trip(cb, 2)
        assert cb.state == "closed"  # 2 of 5
        await trip(cb, 1)
        assert cb.state == "open"  # 3 of 6

    asyncio.run(main())


def test_the_rate_comes_from_the_policy(clock):
    async def main() -> None:
        policy = BreakerPolicy(enabled=True, failure_threshold=2, failure_rate=0.5, window_s=1.0, reset_timeout_s=1)
        cb = AsyncCircuitBreaker.from_policy("views", policy, clock=clock)
        await answer(cb, 3)
        await trip(cb, 2)
        assert cb.state == "closed"  # 2 of 5
        await trip(cb, 1)
        assert cb.state == "open"  # 3 of 6

    asyncio.run(main())
