"""Client-side adaptive throttling (Site Reliability Engineering, "Handling Overload").

Each client remembers, over a sliding window (2 minutes by default), how many calls it made (``requests``)
and how many the dependency accepted (``accepts``: any answer that is not a failure). When the dependency
refuses most of them, sending more only burns its CPU on refusals, so the client refuses locally with
probability ``min(max_rejection, max(0, (requests - k*accepts) / (requests + 1)))``.

What ``requests`` counts is the policy's ``counts``:
- ``asked``, the book's: every call asked for, refused locally or sent. In a steady overload the client
  then sends about k x what gets accepted. After an outage it locks the client out: p is near 1, each call
  raises ``requests`` by one but ``accepts`` by only 1 - p, and p stays high until the window forgets the
  outage; ``max_rejection`` (Envoy's ``max_rejection_probability``) bounds that by always sending a share.
- ``sent``: calls sent only. Every accepted call lowers p, so a recovered dependency gets its traffic back
  within seconds; but a steady overload of ``asked`` calls for ``accepted`` answers then sends about
  sqrt(k x accepted x asked) (3.2x the accepted at 5x, 4.5x at 10x, against the book's 2x), refusals the
  dependency pays for.
Services calling services count ``sent`` (a scenario's recovery must not wait for a window); the users' app
in front of the gateways counts ``asked`` (what the gateways would spend refusing is the stack's capacity).
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable

from services.common.overload.policy import ClientThrottlePolicy

BUCKETS = 60  # the window slides one 60th at a time


class ClientThrottle:
    def __init__(self, clock: Callable[[], float] = time.monotonic, rng: Callable[[], float] = random.random) -> None:
        self._clock = clock
        self._rng = rng
        self._buckets: deque[list[float]] = deque()  # [bucket start, requests, accepts]
        self.requests = 0
        self.accepts = 0

    def _bucket(self, window_s: float) -> list[float]:
        now = self._clock()
        width = window_s / BUCKETS
        while self._buckets and self._buckets[0][0] <= now - window_s:
            _, requests, accepts = self._buckets.popleft()
            self.requests -= int(requests)
            self.accepts -= int(accepts)
        if not self._buckets or now >= self._buckets[-1][0] + width:
            self._buckets.append([now, 0, 0])
        return self._buckets[-1]

    def probability(self, policy: ClientThrottlePolicy) -> float:
        self._bucket(policy.window_s)
        if self.requests < policy.min_requests:
            return 0.0  # one failed call would give 1/2: too few calls to judge a dependency by
        return min(policy.max_rejection, max(0.0, (self.requests - policy.k * self.accepts) / (self.requests + 1)))

    def admit(self, policy: ClientThrottlePolicy) -> bool:
        """False: refuse the call locally (counted as a request, not accepted, when the policy counts calls asked)."""
        p = self.probability(policy)
        if p <= 0.0 or self._rng() >= p:
            return True
        if policy.counts == "asked":
            self._count(policy, accepted=False)
        return False

    def record(self, policy: ClientThrottlePolicy, accepted: bool) -> None:
        """The outcome of a call sent: accepted unless it failed (no answer, 5xx, refused)."""
        self._count(policy, accepted)

    def _count(self, policy: ClientThrottlePolicy, accepted: bool) -> None:
        bucket = self._bucket(policy.window_s)
        bucket[1] += 1
        self.requests += 1
        if accepted:
            bucket[2] += 1
            self.accepts += 1
