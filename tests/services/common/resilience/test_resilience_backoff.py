from __future__ import annotations

import asyncio
import random

import pytest
from tenacity import AsyncRetrying, RetryCallState

from services.common.policy import RetryPolicy
from services.common.resilience import RetryBudget, backoff_s, retrying, wait_strategy


class Flaky(Exception):
    pass


class Fatal(Exception):
    pass


def waits(policy: RetryPolicy, retries: int) -> list[float]:
    """The wait before retry 1..retries, asked of the strategy directly."""
    strategy = wait_strategy(policy)
    state = RetryCallState(AsyncRetrying(), None, (), {})
    out = []
    for attempt in range(1, retries + 1):
        state.attempt_number = attempt
        out.append(strategy(state))
    return out


def test_no_backoff_means_no_wait():
    assert waits(RetryPolicy(attempts=5, backoff="none", base_s=0.5), 6) == [0.0] * 6


def test_exponential_without_jitter_is_exact_and_capped():
    policy = RetryPolicy(attempts=8, backoff="exponential", base_s=0.1, max_s=1.0, jitter="none")
    assert waits(policy, 7) == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0])


def test_full_jitter_stays_within_bounds_and_actually_spreads():
    policy = RetryPolicy(attempts=10, backoff="exponential", base_s=0.05, max_s=1.0, jitter="full")
    saved = random.getstate()
    random.seed(1234)
    try:
        samples = [waits(policy, 9) for _ in range(300)]
    finally:
        random.setstate(saved)
    for n in range(9):
        bound = min(policy.max_s, policy.base_s * 2**n)
        column = [s[n] for s in samples]
        assert all(0.0 <= w <= bound for w in column), n
        # uniform on [0, bound]: both halves are hit (failing odds ~2**-300)
        assert min(column) < bound / 2 < max(column), n


class Recorder:
    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def run_attempts(
    policy: RetryPolicy, outcomes: list[BaseException | str], retry_if=lambda e: isinstance(e, Flaky), before_retry=None
):
    calls = 0
    sleep = Recorder()

    async def fn() -> str:
        nonlocal calls
        outcome = outcomes[min(calls, len(outcomes) - 1)]
        calls += 1
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def main() -> str:
        return await retrying(policy, retry_if, before_retry, sleep=sleep)(fn)

    try:
        result: object = asyncio.run(main())
    except BaseException as exc:
        result = exc
    return result, calls, sleep.sleeps


def test_stops_after_the_policy_attempts_and_reraises_the_last_error_itself():
    policy = RetryPolicy(attempts=3, backoff="exponential", base_s=0.1, max_s=1.0)
    last = Flaky("third")
    result, calls, sleeps = run_attempts(policy, [Flaky("first"), Flaky("second"), last])
    assert result is last  # not tenacity.RetryError
    assert calls == 3
    assert sleeps == pytest.approx([0.1, 0.2])


def test_success_after_a_retry_returns_the_value():
    result, calls, _ = run_attempts(RetryPolicy(attempts=3), [Flaky(), "ok"])
    assert (result, calls) == ("ok", 2)


def test_errors_the_predicate_rejects_are_not_retried():
    fatal = Fatal()
    result, calls, sleeps = run_attempts(RetryPolicy(attempts=5), [fatal])
    assert result is fatal and calls == 1 and sleeps == []


def test_single_attempt_policy_never_retries():
    asked = []
    result, calls, _ = run_attempts(RetryPolicy(attempts=1), [Flaky()], before_retry=lambda: asked.append(1) or True)
    assert isinstance(result, Flaky) and calls == 1
    assert asked == []


def test_before_retry_false_stops_and_reraises_the_last_error():
    first = Flaky("first")
    result, calls, sleeps = run_attempts(RetryPolicy(attempts=5), [first], before_retry=lambda: False)
    assert result is first
    assert calls == 1 and sleeps == []


def test_before_retry_is_asked_once_per_real_retry_only():
    asked = []
    result, calls, _ = run_attempts(RetryPolicy(attempts=3), [Flaky()], before_retry=lambda: asked.append(1) or True)
    assert isinstance(result, Flaky) and calls == 3
    assert len(asked) == 2  # not charged after the last attempt


def test_retry_budget_limits_retries_across_calls(clock):
    budget = RetryBudget(ratio=0.0, min_retries_per_s=1.0, clock=clock)  # exactly one retry in hand
    result, calls, _ = run_attempts(RetryPolicy(attempts=5), [Flaky()], before_retry=budget.try_withdraw)
    assert isinstance(result, Flaky) and calls == 2
    result, calls, _ = run_attempts(RetryPolicy(attempts=5), [Flaky()], before_retry=budget.try_withdraw)
    assert isinstance(result, Flaky) and calls == 1  # the budget is empty now


@pytest.mark.parametrize(
    "policy",
    [
        RetryPolicy(attempts=5, backoff="none", base_s=0.5),
        RetryPolicy(attempts=8, backoff="exponential", base_s=0.1, max_s=1.0, jitter="none"),
        RetryPolicy(attempts=8, backoff="exponential", base_s=0.02, max_s=0.2, jitter="none"),
    ],
)
def test_backoff_s_is_the_tenacity_strategys_wait(policy):
    assert [backoff_s(policy, n) for n in range(1, 8)] == pytest.approx(waits(policy, 7))


def test_backoff_s_with_full_jitter_draws_up_to_the_exponential_bound():
    policy = RetryPolicy(attempts=8, backoff="exponential", base_s=0.1, max_s=1.0, jitter="full")
    bounds: list[tuple[float, float]] = []
    assert backoff_s(policy, 3, draw=lambda low, high: bounds.append((low, high)) or high) == pytest.approx(0.4)
    assert bounds == [(0.0, pytest.approx(0.4))]
    draws = [backoff_s(policy, 6) for _ in range(200)]
    assert all(0.0 <= d <= 1.0 for d in draws) and len(set(draws)) > 100
