"""Delta debugging (Zeller and Hildebrandt, TSE 2002): shrink a failing fault set to a 1-minimal one.

Hand-written: the algorithm is twenty lines, and the Python packages offering it are unmaintained or built for
shrinking test inputs (strings, files), not awaiting a live experiment per test.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


async def ddmin(failing: Sequence[T], fails: Callable[[tuple[T, ...]], Awaitable[bool]]) -> tuple[T, ...]:
    """A subset of ``failing`` that still fails and from which removing any one element makes it pass.

    ``fails(subset)`` runs (or looks up) the experiment; ``failing`` itself is taken to fail. The order of
    ``failing`` fixes which minimal subset is found when several are (deterministic for a given order)."""
    current = tuple(failing)
    n = 2
    while len(current) >= 2:
        chunks = _split(current, n)
        for chunk in chunks:  # a single chunk that fails on its own
            if await fails(chunk):
                current, n = chunk, 2
                break
        else:
            for i in range(len(chunks)):  # the complement of a chunk that still fails
                complement = tuple(x for j, c in enumerate(chunks) if j != i for x in c)
                if n > 2 and await fails(complement):
                    current, n = complement, max(n - 1, 2)
                    break
            else:
                if n >= len(current):
                    break
                n = min(len(current), 2 * n)
    return current


def _split(items: tuple[T, ...], n: int) -> list[tuple[T, ...]]:
    size, extra = divmod(len(items), n)
    chunks, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        chunks.append(items[start:end])
        start = end
    return [c for c in chunks if c]
