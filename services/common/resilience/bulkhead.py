"""A bulkhead: a hard cap on concurrent calls to one dependency, rejecting (never queueing) the excess.

Why reject instead of queue: a queue in front of a slow dependency just converts its latency
into ours and holds our workers hostage; failing fast keeps the rest of the service responsive
and lets fallbacks run while there is still time for them.
"""

from __future__ import annotations

from types import TracebackType

from services.common.policy import BulkheadPolicy
from services.common.resilience.errors import BulkheadFull


class Bulkhead:
    """``async with bulkhead: ...`` runs the block in a slot or raises ``BulkheadFull`` at once.

    No lock is needed: the check-and-increment in ``__aenter__`` contains no await, so under
    asyncio it is atomic with respect to other tasks. (Not for use across threads.)
    """

    def __init__(self, max_concurrent: int | None = None) -> None:
        if max_concurrent is not None and max_concurrent < 1:
            raise ValueError("max_concurrent must be >= 1 or None (unbounded)")
        self.max_concurrent = max_concurrent
        self._in_flight = 0
        self.rejected = 0

    @classmethod
    def from_policy(cls, policy: BulkheadPolicy) -> Bulkhead:
        return cls(policy.max_concurrent)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def __aenter__(self) -> Bulkhead:
        if self.max_concurrent is not None and self._in_flight >= self.max_concurrent:
            self.rejected += 1
            raise BulkheadFull(self.max_concurrent)
        self._in_flight += 1
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Runs on success, error and cancellation alike, so a slot can never leak.
        self._in_flight -= 1
