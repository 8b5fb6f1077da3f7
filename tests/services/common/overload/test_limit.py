"""AIMDLimit: additive increase while answers are fast and the limit in use, multiplicative decrease when slow."""
from __future__ import annotations

from services.common.overload import AdmissionPolicy, AIMDLimit


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


POLICY = AdmissionPolicy(enabled=True, initial_limit=10, min_limit=4, max_limit=12, latency_target_s=0.1)


def test_grows_by_one_per_limits_worth_of_fast_answers_up_to_the_max() -> None:
    limit = AIMDLimit(POLICY, Clock())
    for _ in range(10):
        limit.on_answer(0.01, in_flight=10)
    assert limit.current == 10 and limit.limit > 10.9
    for _ in range(100):
        limit.on_answer(0.01, in_flight=12)
    assert limit.current == 12


def test_an_idle_limit_does_not_grow() -> None:
    limit = AIMDLimit(POLICY, Clock())
    for _ in range(100):
        limit.on_answer(0.01, in_flight=1)
    assert limit.current == 10


def test_slow_answers_shrink_it_once_per_target_interval_down_to_the_min() -> None:
    clock = Clock()
    limit = AIMDLimit(POLICY, clock)
    for _ in range(20):  # a burst of slow answers at one moment: one decrease
        limit.on_answer(0.5, in_flight=10)
    assert limit.current == 9
    for _ in range(50):
        clock.now += 0.1
        limit.on_answer(0.5, in_flight=10)
    assert limit.current == 4
