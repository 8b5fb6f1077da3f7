"""A dimmer (Klein et al., "Brownout", ICSE 2014): under overload, serve a share of requests without their
optional work before refusing any.

A feed's view counts are optional: a feed with stale counts from the gateway's memory still answers the
user, at about half the stack's CPU (no call to views, no work there). The admission limit's windows
(``AIMDLimit``) judge the dimmer first, against its own latency target, lower than the limit's: a window
slower than that lowers the share served in full by ``step``; only a window slow for the limit with the
dimmer already at its floor shrinks the limit; a fast window in which the limit refused nobody raises the
share again (requests come back before freshness). So overload first costs users freshness, then
requests, and the mix is steered before the calls inside a feed reach their timeouts, not left to breakers
that open on them and flap (the swing the overload benchmark measured: docs/benchmarks.md).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from services.common.overload.metrics import FULL_SHARE
from services.common.overload.policy import DimmerPolicy


class Dimmer:
    def __init__(
        self, policy: Callable[[], DimmerPolicy], optional: str, rng: Callable[[], float] = random.random
    ) -> None:
        """``policy`` is read each time: a profile swapped live turns the dimmer on or off at once. ``optional``
        names the work it leaves out (its gauge's label)."""
        self.policy = policy
        self._rng = rng
        self._gauge = FULL_SHARE.labels(optional)
        self._set(1.0)

    def full(self) -> bool:
        """Whether this request gets its optional work."""
        if not self.policy().enabled:
            return True
        return self.full_share >= 1.0 or self._rng() < self.full_share

    def latency_target_s(self) -> float:
        return self.policy().latency_target_s

    def dim(self) -> bool:
        """A slow window: dim one step. False when it cannot (off, or at its floor): the limit must shrink."""
        policy = self.policy()
        if not policy.enabled or self.full_share <= policy.min_full_share:
            return False
        self._set(max(policy.min_full_share, self.full_share - policy.step))
        return True

    def brighten(self) -> None:
        """A fast window: one step back towards serving everything in full."""
        if self.full_share < 1.0:
            self._set(min(1.0, self.full_share + self.policy().step))

    def _set(self, share: float) -> None:
        self.full_share = share
        self._gauge.set(share)
