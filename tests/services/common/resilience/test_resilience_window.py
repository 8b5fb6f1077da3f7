from __future__ import annotations

from services.common.resilience.window import FailureWindow


def test_counts_calls_and_failures_within_the_window() -> None:
    window = FailureWindow(window_s=1.0, buckets=10)
    for i in range(10):
        window.add(100.0 + i * 0.1, failed=i % 2 == 0)
    assert window.counts() == (10, 5)


def test_slices_age_out_one_by_one() -> None:
    window = FailureWindow(window_s=1.0, buckets=10)
    window.add(100.0, failed=True)
    window.add(100.55, failed=False)
    window.add(100.95, failed=False)
    assert window.counts() == (3, 1)
    window.add(101.05, failed=False)  # the first slice (100.0-100.1) is past
    assert window.counts() == (3, 0)
    window.add(101.6, failed=False)  # so is 100.5-100.6
    assert window.counts() == (3, 0)


def test_a_long_quiet_forgets_everything() -> None:
    window = FailureWindow(window_s=1.0, buckets=10)
    for i in range(10):
        window.add(100.0 + i * 0.1, failed=True)
    window.add(500.0, failed=False)
    assert window.counts() == (1, 0)
    window.clear()
    assert window.counts() == (0, 0)
