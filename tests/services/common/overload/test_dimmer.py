"""Dimmer with AIMDLimit: a slow window dims before it shrinks the limit; fast windows brighten again."""

from __future__ import annotations

from services.common.overload import AdmissionPolicy, AIMDLimit, Dimmer, DimmerPolicy

ADMISSION = AdmissionPolicy(
    enabled=True, initial_limit=10, min_limit=4, max_limit=12, latency_target_s=0.1, decrease_factor=0.5
)
ON = DimmerPolicy(enabled=True, latency_target_s=0.05, step=0.25, min_full_share=0.5)  # limit's target: 0.1


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _window(limit: AIMDLimit, clock: Clock, latency_s: float, in_flight: int = 10) -> None:
    clock.now += 0.1  # one answer closes each window
    limit.on_answer(latency_s, in_flight)


def _ladder(policy: DimmerPolicy) -> tuple[Dimmer, AIMDLimit, Clock]:
    clock = Clock()
    dimmer = Dimmer(lambda: policy, "test", rng=lambda: 0.6)
    return dimmer, AIMDLimit(ADMISSION, clock, dimmer), clock


def test_slow_windows_dim_down_to_the_floor_before_the_limit_shrinks() -> None:
    dimmer, limit, clock = _ladder(ON)
    _window(limit, clock, 0.5)
    assert (dimmer.full_share, limit.current) == (0.75, 10)
    assert dimmer.full()  # 0.6 < 0.75
    _window(limit, clock, 0.5)
    assert (dimmer.full_share, limit.current) == (0.5, 10)
    assert not dimmer.full()  # 0.6 >= 0.5: this request goes without its optional work
    _window(limit, clock, 0.5)  # at the floor: now requests are refused
    assert (dimmer.full_share, limit.current) == (0.5, 5)


def test_fast_windows_brighten_back_to_full_and_grow_the_limit() -> None:
    dimmer, limit, clock = _ladder(ON)
    _window(limit, clock, 0.5)
    _window(limit, clock, 0.5)
    _window(limit, clock, 0.01)
    assert (dimmer.full_share, limit.current) == (0.75, 11)
    _window(limit, clock, 0.01)
    _window(limit, clock, 0.01)
    assert (dimmer.full_share, limit.current) == (1.0, 12)
    assert dimmer.full()


def test_a_dimmer_turned_off_never_dims_and_the_limit_shrinks_at_once() -> None:
    dimmer, limit, clock = _ladder(DimmerPolicy(enabled=False))
    _window(limit, clock, 0.5)
    assert (dimmer.full_share, limit.current) == (1.0, 5)
    assert dimmer.full()


def test_a_profile_swapped_live_to_no_dimmer_serves_everything_in_full_at_once() -> None:
    current = {"policy": ON}
    dimmer = Dimmer(lambda: current["policy"], "test", rng=lambda: 0.99)
    dimmer.dim()
    dimmer.dim()
    assert not dimmer.full()
    current["policy"] = DimmerPolicy(enabled=False)
    assert dimmer.full()


def test_while_the_limit_refuses_fast_windows_grow_it_and_leave_the_dimmer_dim() -> None:
    dimmer, limit, clock = _ladder(ON)
    for _ in range(3):
        _window(limit, clock, 0.5)
    assert (dimmer.full_share, limit.current) == (0.5, 5)
    limit.on_refusal()
    _window(limit, clock, 0.01)
    assert (dimmer.full_share, limit.current) == (0.5, 6)  # requests come back first
    _window(limit, clock, 0.01)  # nobody refused in this window: freshness comes back too
    assert (dimmer.full_share, limit.current) == (0.75, 7)


def test_a_slow_window_with_few_requests_held_shrinks_the_limit_and_leaves_the_dimmer_alone() -> None:
    """One slow request (a slow dependency, a fault-space search's experiment) is not overload."""
    dimmer, limit, clock = _ladder(ON)
    _window(limit, clock, 0.5, in_flight=1)
    assert (dimmer.full_share, limit.current) == (1.0, 5)


def test_a_window_slow_only_for_the_dimmer_dims_and_then_the_limit_works_to_its_own_target() -> None:
    dimmer, limit, clock = _ladder(ON)
    _window(limit, clock, 0.07)  # over the dimmer's 50 ms, under the limit's 100 ms
    assert (dimmer.full_share, limit.current) == (0.75, 10)
    _window(limit, clock, 0.07)
    _window(limit, clock, 0.07)  # at the floor: fast for the limit, which grows, and stays dim
    assert (dimmer.full_share, limit.current) == (0.5, 11)
    _window(limit, clock, 0.01)  # fast for both, nobody refused: brighter
    assert (dimmer.full_share, limit.current) == (0.75, 12)
