from __future__ import annotations

import pytest

from services.common.policy import RetryBudgetPolicy
from services.common.resilience import RetryBudget


def withdraw_all(budget: RetryBudget, limit: int = 1000) -> int:
    n = 0
    while n < limit and budget.try_withdraw():
        n += 1
    return n


def test_ratio_caps_retries_at_a_tenth_of_requests(clock):
    budget = RetryBudget(ratio=0.1, min_retries_per_s=0, clock=clock)
    for _ in range(100):
        budget.deposit()
    assert budget.level == pytest.approx(10.0)
    assert withdraw_all(budget) == 10  # float drift (0.1 * 100 = 9.99...) must not cost a retry
    assert budget.level == pytest.approx(0.0, abs=1e-6)
    assert not budget.try_withdraw()


def test_no_requests_and_no_floor_means_no_retries(clock):
    budget = RetryBudget(ratio=0.1, min_retries_per_s=0, clock=clock)
    assert budget.level == 0.0
    assert not budget.try_withdraw()


def test_partial_tokens_do_not_buy_a_retry(clock):
    budget = RetryBudget(ratio=0.1, min_retries_per_s=0, clock=clock)
    for _ in range(19):
        budget.deposit()
    assert withdraw_all(budget) == 1
    for _ in range(10):
        budget.deposit()  # 0.9 left over + 1.0 new
    assert withdraw_all(budget) == 1


def test_floor_allows_retries_when_idle_at_its_rate(clock):
    budget = RetryBudget(ratio=0.1, min_retries_per_s=1.0, clock=clock)
    assert budget.try_withdraw()  # starts with one second's worth
    assert not budget.try_withdraw()
    clock.advance(0.5)
    assert not budget.try_withdraw()
    clock.advance(0.5)
    assert budget.try_withdraw()
    assert not budget.try_withdraw()


def test_floor_does_not_accumulate_a_burst_while_idle(clock):
    budget = RetryBudget(ratio=0.1, min_retries_per_s=2.0, clock=clock)
    clock.advance(100.0)
    assert budget.level == pytest.approx(2.0)
    assert withdraw_all(budget) == 2


def test_slow_floor_still_reaches_one_whole_retry(clock):
    budget = RetryBudget(ratio=0.0, min_retries_per_s=0.5, clock=clock)
    assert withdraw_all(budget) == 1
    clock.advance(1.0)
    assert not budget.try_withdraw()
    clock.advance(1.0)
    assert budget.try_withdraw()


def test_earned_tokens_expire_after_the_window(clock):
    budget = RetryBudget(ratio=0.1, min_retries_per_s=0, window_s=10.0, clock=clock)
    for _ in range(20):
        budget.deposit()
    clock.advance(5.0)
    assert budget.level == pytest.approx(2.0)
    clock.advance(6.0)
    assert budget.level == pytest.approx(0.0)
    assert not budget.try_withdraw()


def test_earned_and_floor_add_up(clock):
    budget = RetryBudget(ratio=0.5, min_retries_per_s=1.0, clock=clock)
    budget.deposit()
    budget.deposit()
    assert budget.level == pytest.approx(2.0)
    assert withdraw_all(budget) == 2


def test_from_policy(clock):
    budget = RetryBudget.from_policy(RetryBudgetPolicy(enabled=True, ratio=0.2, min_retries_per_s=0), clock=clock)
    for _ in range(10):
        budget.deposit()
    assert withdraw_all(budget) == 2


def test_rejects_negative_parameters():
    with pytest.raises(ValueError):
        RetryBudget(ratio=-0.1)
    with pytest.raises(ValueError):
        RetryBudget(window_s=0)
