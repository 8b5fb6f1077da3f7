"""ClientThrottle: the SRE book's adaptive throttling, with a fake clock and a fixed random draw."""

from __future__ import annotations

import pytest

from services.common.overload import ClientThrottle, ClientThrottlePolicy

POLICY = ClientThrottlePolicy(enabled=True, k=2, window_s=120)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_never_refuses_while_the_dependency_accepts() -> None:
    throttle = ClientThrottle(Clock(), rng=lambda: 0.0)  # 0.0: refused whenever p > 0
    for _ in range(1000):
        assert throttle.admit(POLICY)
        throttle.record(POLICY, accepted=True)
    assert throttle.probability(POLICY) == 0.0


def test_refuses_with_the_books_probability_when_most_calls_fail() -> None:
    throttle = ClientThrottle(Clock(), rng=lambda: 0.5)
    for n in range(100):
        if throttle.admit(POLICY):
            throttle.record(POLICY, accepted=n % 4 == 0)  # a quarter accepted
    requests, accepts = throttle.requests, throttle.accepts
    assert throttle.probability(POLICY) == pytest.approx(max(0.0, (requests - 2 * accepts) / (requests + 1)))
    assert throttle.probability(POLICY) > 0.3


def test_calls_refused_locally_do_not_lock_the_client_out() -> None:
    throttle = ClientThrottle(Clock(), rng=lambda: 0.5)
    for _ in range(100):  # an outage: everything sent fails
        throttle.record(POLICY, accepted=False)
    assert not throttle.admit(POLICY)
    refused = sum(not throttle.admit(POLICY) for _ in range(50))
    assert refused == 50 and throttle.requests == 100  # refusing locally changes nothing
    for _ in range(100):  # the dependency is back: what still goes out is accepted
        throttle.record(POLICY, accepted=True)
    assert throttle.probability(POLICY) == 0.0


def test_the_window_forgets() -> None:
    clock = Clock()
    throttle = ClientThrottle(clock, rng=lambda: 0.0)
    for _ in range(50):
        throttle.record(POLICY, accepted=False)
    assert throttle.probability(POLICY) > 0.9
    clock.now += 121  # two minutes later the outage is forgotten
    assert throttle.probability(POLICY) == 0.0 and throttle.requests == 0


def test_a_few_failures_are_too_few_to_judge_by() -> None:
    throttle = ClientThrottle(Clock(), rng=lambda: 0.0)
    for _ in range(POLICY.min_requests - 1):
        throttle.record(POLICY, accepted=False)
    assert throttle.probability(POLICY) == 0.0 and throttle.admit(POLICY)
    throttle.record(POLICY, accepted=False)
    assert throttle.probability(POLICY) > 0.9
