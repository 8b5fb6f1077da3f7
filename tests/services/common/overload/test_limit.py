"""AIMDLimit: per window, +1 while answers are fast and the limit in use, x factor when slow or requests wait."""

from __future__ import annotations

from services.common.overload import AdmissionPolicy, AIMDLimit


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


POLICY = AdmissionPolicy(
    enabled=True,
    initial_limit=10,
    min_limit=4,
    max_limit=12,
    latency_target_s=0.1,
    loop_lag_target_s=0.05,
    decrease_factor=0.5,
)


def _window(limit: AIMDLimit, clock: Clock, latencies: list[float], in_flight: int, waiting_s: float = 0.0) -> None:
    for latency in latencies[:-1]:
        limit.on_answer(latency, in_flight, waiting_s)
    clock.now += 0.1  # the window's last answer closes it
    limit.on_answer(latencies[-1], in_flight, waiting_s)


def test_grows_by_one_per_fast_window_while_in_use_up_to_the_max() -> None:
    clock = Clock()
    limit = AIMDLimit(POLICY, clock)
    _window(limit, clock, [0.01] * 20, in_flight=10)
    assert limit.current == 11
    for _ in range(5):
        _window(limit, clock, [0.01] * 20, in_flight=12)
    assert limit.current == 12


def test_an_idle_limit_does_not_grow() -> None:
    clock = Clock()
    limit = AIMDLimit(POLICY, clock)
    for _ in range(5):
        _window(limit, clock, [0.01] * 20, in_flight=1)
    assert limit.current == 10


def test_a_slow_window_shrinks_it_once_and_one_slow_answer_is_noise() -> None:
    clock = Clock()
    limit = AIMDLimit(POLICY, clock)
    _window(limit, clock, [0.01] * 19 + [0.5], in_flight=10)  # mean 0.034 s: fast
    assert limit.current == 11
    _window(limit, clock, [0.5] * 20, in_flight=10)
    assert limit.current == 5
    _window(limit, clock, [0.5] * 20, in_flight=10)
    assert limit.current == 4  # never below the min


def test_requests_waiting_to_be_read_shrink_it_even_when_answers_are_fast() -> None:
    clock = Clock()
    limit = AIMDLimit(POLICY, clock)
    _window(limit, clock, [0.01] * 20, in_flight=10, waiting_s=0.2)
    assert limit.current == 5
