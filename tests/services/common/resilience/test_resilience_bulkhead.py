from __future__ import annotations

import asyncio

import pytest

from services.common.policy import BulkheadPolicy
from services.common.resilience import Bulkhead, BulkheadFull


async def hold(bulkhead: Bulkhead, gate: asyncio.Event) -> str:
    async with bulkhead:
        await gate.wait()
        return "done"


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_rejects_immediately_when_full_and_frees_slots_after():
    async def main() -> None:
        bulkhead = Bulkhead(2)
        gate = asyncio.Event()
        holders = [asyncio.create_task(hold(bulkhead, gate)) for _ in range(2)]
        await settle()
        assert bulkhead.in_flight == 2

        ran = False
        with pytest.raises(BulkheadFull) as info:
            async with bulkhead:
                ran = True
        assert not ran
        assert info.value.max_concurrent == 2
        assert bulkhead.rejected == 1
        assert bulkhead.in_flight == 2  # the rejected call took no slot

        gate.set()
        assert await asyncio.gather(*holders) == ["done", "done"]
        assert bulkhead.in_flight == 0
        async with bulkhead:
            assert bulkhead.in_flight == 1

    asyncio.run(main())


def test_many_concurrent_callers_get_exactly_max_slots():
    async def main() -> None:
        bulkhead = Bulkhead(3)
        gate = asyncio.Event()
        tasks = [asyncio.create_task(hold(bulkhead, gate)) for _ in range(10)]
        await settle()
        assert bulkhead.in_flight == 3
        assert bulkhead.rejected == 7
        gate.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert results.count("done") == 3
        assert sum(isinstance(r, BulkheadFull) for r in results) == 7

    asyncio.run(main())


def test_slot_is_released_on_error_and_on_cancellation():
    async def main() -> None:
        bulkhead = Bulkhead(1)
        with pytest.raises(ZeroDivisionError):
            async with bulkhead:
                raise ZeroDivisionError
        assert bulkhead.in_flight == 0

        task = asyncio.create_task(hold(bulkhead, asyncio.Event()))
        await settle()
        assert bulkhead.in_flight == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert bulkhead.in_flight == 0

    asyncio.run(main())


def test_none_is_unbounded():
    async def main() -> None:
        bulkhead = Bulkhead.from_policy(BulkheadPolicy())
        gate = asyncio.Event()
        tasks = [asyncio.create_task(hold(bulkhead, gate)) for _ in range(500)]
        await settle()
        assert bulkhead.in_flight == 500
        gate.set()
        await asyncio.gather(*tasks)
        assert bulkhead.rejected == 0

    asyncio.run(main())


def test_from_policy_and_validation():
    assert Bulkhead.from_policy(BulkheadPolicy(max_concurrent=7)).max_concurrent == 7
    with pytest.raises(ValueError):
        Bulkhead(0)
