"""Recovery is for good: a relapse after the hypothesis held again starts it over."""

from __future__ import annotations

from chaos.engine.recovery import Change, Recovery
from chaos.metastability import RECOVERED, STUCK, classify


def test_recovery_is_the_first_check_of_the_last_run_that_held():
    recovery = Recovery(removed_at=100.0)
    assert recovery.see(102.0, False) is None  # still down: nothing changes
    assert recovery.see(104.0, None) is None  # no data: neither starts nor breaks a run
    assert recovery.see(106.0, True) is Change.RECOVERED and recovery.after_s == 6.0
    assert recovery.see(108.0, None) is None and recovery.after_s == 6.0
    # the storm takes hold again once the users are back: not recovered after all
    assert recovery.see(110.0, False) is Change.RELAPSED and recovery.after_s is None
    assert recovery.see(114.0, True) is Change.RECOVERED and recovery.after_s == 14.0
    assert recovery.relapses == 1


def test_a_stack_that_relapses_within_the_observed_time_is_stuck_on_the_map():
    checks = [(102.0, False), (104.0, True), (106.0, False), (108.0, False)]  # one good window, then down
    assert classify(checks, 100.0, 20.0) == (STUCK, None)
    assert classify(checks[:2], 100.0, 20.0) == (RECOVERED, 4.0)
