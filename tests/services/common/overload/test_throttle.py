"""ClientThrottle: the SRE book's adaptive throttling, with a fake clock and a fixed random draw."""

from __future__ import annotations

import random

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


def _steady_overload(policy: ClientThrottlePolicy, asked_per_s: int, accepted_per_s: int, seconds: int = 120) -> float:
    """Calls sent per call accepted once the window is full, against a dependency that accepts at most
    ``accepted_per_s`` calls a second and refuses the rest."""
    clock = Clock()
    throttle = ClientThrottle(clock, rng=random.Random(1).random)
    sent = accepted = 0
    for second in range(seconds):
        room = accepted_per_s
        for _ in range(asked_per_s):
            if not throttle.admit(policy):
                continue
            ok = room > 0
            room -= ok
            throttle.record(policy, accepted=ok)
            if second >= seconds - 30:
                sent, accepted = sent + 1, accepted + ok
        clock.now += 1.0
    return sent / accepted


def test_counting_calls_asked_sends_about_k_times_what_is_accepted_in_a_steady_overload() -> None:
    asked = ClientThrottlePolicy(enabled=True, k=2, window_s=30, counts="asked")
    sent = ClientThrottlePolicy(enabled=True, k=2, window_s=30, counts="sent")
    # 10x overload: 500 calls asked a second, 50 accepted
    assert _steady_overload(asked, 500, 50) == pytest.approx(2.0, rel=0.1)
    # counting only calls sent: ~sqrt(2 x 500 / 50) = 4.5, the departure's cost
    assert _steady_overload(sent, 500, 50) == pytest.approx((2 * 500 / 50) ** 0.5, rel=0.1)


def test_counting_calls_asked_counts_the_refused_ones_as_requests_not_accepted() -> None:
    policy = ClientThrottlePolicy(enabled=True, k=2, window_s=120, counts="asked")
    throttle = ClientThrottle(Clock(), rng=lambda: 0.5)
    for _ in range(100):
        throttle.record(policy, accepted=False)
    refused = sum(not throttle.admit(policy) for _ in range(50))
    assert refused == 50 and (throttle.requests, throttle.accepts) == (150, 0)


def test_max_rejection_always_lets_a_share_through_after_an_outage() -> None:
    policy = ClientThrottlePolicy(enabled=True, k=2, window_s=120, counts="asked", max_rejection=0.9)
    throttle = ClientThrottle(Clock(), rng=random.Random(3).random)
    for _ in range(1000):  # an outage: everything sent fails, everything refused counts
        if throttle.admit(policy):
            throttle.record(policy, accepted=False)
    assert throttle.probability(policy) == 0.9
    let_through = sum(throttle.admit(policy) for _ in range(1000))
    assert 60 <= let_through <= 140  # ~10%, not the book's ~1 per window
