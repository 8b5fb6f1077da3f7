"""The overload benchmark's rounds: a multiple's goodput is the mean of its rounds, the capacity the best mean."""

from __future__ import annotations

from overload import merged, per_multiple

from loadtest.open_loop import Level, Outcome


def _level(rate: float, seconds: float, good: int, bad: int = 0) -> Level:
    outcomes = [Outcome(ok=True, status=200, latency_s=0.1) for _ in range(good)]
    outcomes += [Outcome(ok=False, status=503, latency_s=0.001) for _ in range(bad)]
    return Level(rate, seconds, 2.0, outcomes, dropped=1)


def test_rounds_merge_into_their_mean_over_all_their_seconds() -> None:
    level = merged([_level(100.0, 10.0, 500, 5), _level(100.0, 10.0, 700, 5)])
    assert level.goodput_per_s == 60.0  # (500 + 700) / 20 s, not the last round's 70
    assert (level.seconds, len(level.outcomes), level.dropped) == (20.0, 1210, 2)
    assert level.summary(capacity=80.0)["goodput_of_capacity"] == 0.75


def test_each_multiple_keeps_its_rounds_in_the_order_first_offered() -> None:
    first, second, third = _level(100, 10, 1), _level(200, 10, 2), _level(100, 10, 3)
    grouped = per_multiple([(1.0, first, {"n": 1}), (2.0, second, {"n": 2}), (1.0, third, {"n": 3})])
    assert list(grouped) == [1.0, 2.0]
    assert grouped[1.0] == [(first, {"n": 1}), (third, {"n": 3})]
