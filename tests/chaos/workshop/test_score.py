"""Timers and points from what users saw: synthetic requests.csv rows, a real hypothesis."""

from __future__ import annotations

import pytest

from chaos.engine.scenario import Hypothesis
from chaos.workshop.score import lost_writes, score
from loadtest.requests_reader import RequestRow

HYP = Hypothesis.model_validate(
    {"window": "4s", "min_requests": 4, "probes": [{"success_rate": {"action": "feed", "min": 0.9}}]}
)


def rows(start: float, end: float, ok: bool, per_s: int = 4) -> list[RequestRow]:
    """``per_s`` feed requests a second finishing between start and end, all ok or all failed."""
    return [
        RequestRow(t=start + i / per_s, dc="dc-west", action="feed", ok=ok, latency_ms=20)
        for i in range(int((end - start) * per_s))
    ]


def test_an_outage_met_by_a_team_gets_its_three_timers_from_the_onset():
    # healthy until 100, failing 100-130, healthy again after 130; the team declared at 90 (false) and 112
    history = rows(60, 100, True) + rows(100, 130, False) + rows(130, 170, True)
    s = score(HYP, history, onset=100.0, end=170.0, declarations=[90.0, 112.0])
    assert s.users_hurt and s.detect_s == 12.0 and s.false_alarms == 1
    assert 30 <= s.mitigate_s <= 36 and s.recover_s == s.mitigate_s  # success back above 90% once the window clears
    assert s.requests == len(rows(100, 170, True)) and s.failed == 120
    assert (
        276 <= s.expected <= 280 and s.unserved == 120
    )  # every owed answer came (the last as the load ends): 120 failed
    assert s.lost_writes is None
    assert 0 < s.points < 1000


def test_a_fault_users_never_felt_costs_nothing_but_detection():
    history = rows(60, 170, True)
    detected = score(HYP, history, onset=100.0, end=170.0, declarations=[105.0])
    missed = score(HYP, history, onset=100.0, end=170.0, declarations=[])
    assert detected.mitigate_s == detected.recover_s == 0 and not detected.users_hurt
    assert missed.detect_s is None and detected.points - missed.points == 300 - 10  # undetected vs 5 s to detect


def test_no_recovery_before_the_end_and_quiet_windows_are_neutral():
    history = rows(60, 100, True) + rows(100, 150, False)  # failing until the load stopped at 150
    s = score(HYP, history, onset=100.0, end=200.0, declarations=[101.0])
    assert s.mitigate_s is None and s.recover_s is None


def test_the_end_of_the_load_is_not_an_outage():
    history = rows(60, 100, True) + rows(100, 110, False) + rows(110, 150, True)  # then the run and its users end
    s = score(HYP, history, onset=100.0, end=300.0, declarations=[101.0])
    assert s.recover_s is not None and s.recover_s < 20


def test_panic_stops_the_clocks_it_ends():
    history = rows(60, 100, True) + rows(100, 120, False)  # the panic at 120 stopped the run and its users
    s = score(HYP, history, onset=100.0, end=200.0, declarations=[101.0], panic_at=120.0)
    assert s.mitigate_s == s.recover_s == 20.0


def test_an_exercise_ended_before_the_fault_came():
    s = score(HYP, rows(60, 100, True), onset=None, end=100.0, declarations=[80.0, 90.0])
    assert s.detect_s is None and s.false_alarms == 2 and s.points == 950


@pytest.mark.parametrize("lost, cost", [(None, 0), (0, 0), (10, 20), (1000, 200)])
def test_lost_writes_cost_points_capped(lost, cost):
    base = score(HYP, rows(60, 170, True), onset=100.0, end=170.0, declarations=[100.0])
    s = score(HYP, rows(60, 170, True), onset=100.0, end=170.0, declarations=[100.0], lost_writes=lost)
    assert base.points - s.points == cost


def test_lost_writes_come_from_the_audit_of_the_run_when_there_is_one(tmp_path):
    assert lost_writes(tmp_path) is None  # no audit.json: not measured
    (tmp_path / "audit.json").write_text('{"lost_acked_everywhere": 7, "views": []}')
    assert lost_writes(tmp_path) == 7
    (tmp_path / "audit.json").write_text("{not json")
    assert lost_writes(tmp_path) is None


def test_requests_hanging_on_a_dark_data_center_count_as_not_served():
    # 4/s before the onset; afterwards only 1/s finishes (the rest hang), all of them failures, then recovery
    history = rows(60, 100, True) + rows(100, 120, False, per_s=1) + rows(120, 150, True)
    s = score(HYP, history, onset=100.0, end=150.0, declarations=[101.0])
    assert s.failed == 20 and 196 <= s.expected <= 200 and s.unserved == s.expected - 120  # 120 served
