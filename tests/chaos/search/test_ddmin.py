"""Delta debugging shrinks a failing set to a 1-minimal one."""

from __future__ import annotations

import asyncio

from chaos.search.ddmin import ddmin


def shrink(items: list[int], cause: set[int]) -> tuple[tuple[int, ...], list[tuple[int, ...]]]:
    tested: list[tuple[int, ...]] = []

    async def fails(subset: tuple[int, ...]) -> bool:
        tested.append(subset)
        return cause <= set(subset)

    return asyncio.run(ddmin(items, fails)), tested


def test_it_finds_the_two_elements_that_fail_together_among_eight():
    found, tested = shrink(list(range(1, 9)), {2, 7})
    assert found == (2, 7)
    assert len(tested) < 2**8 - 1  # far from every subset


def test_a_single_cause_is_found_and_a_minimal_set_is_kept_whole():
    assert shrink([4, 5, 6], {5})[0] == (5,)
    assert shrink([1, 2], {1, 2})[0] == (1, 2)
    assert shrink([3], {3})[0] == (3,)
