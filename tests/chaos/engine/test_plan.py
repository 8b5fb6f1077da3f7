"""Timelines become concrete steps: flaps unrolled, timed faults paired with reverts, phases found."""

from __future__ import annotations

from chaos.engine.plan import make_plan
from chaos.engine.scenario import parse_timeline


def steps(raw: list[dict], duration: float = 100):
    return make_plan(parse_timeline(raw, "test", duration))


def test_a_flap_unrolls_into_power_offs_and_ons():
    plan = steps([{"at": "10s", "flap": {"dc": "dc-east", "times": 3, "off_for": "2s", "on_for": "5s"}}])
    assert [(s.at, s.action.kind) for s in plan.steps] == [
        (10, "power_off"),
        (12, "power_on"),
        (17, "power_off"),
        (19, "power_on"),
        (24, "power_off"),
        (26, "power_on"),
    ]
    assert (plan.first_fault_at, plan.recovery_at) == (10, 26)


def test_a_timed_fault_is_reverted_by_id():
    plan = steps([{"at": "5s", "latency": {"from": "dc-west", "to": "dc-east", "ms": 100}, "for": "10s", "id": "slow"}])
    assert [(s.at, s.describe()) for s in plan.steps][1] == (15, "revert slow")
    assert (plan.first_fault_at, plan.recovery_at) == (5, 15)


def test_recovery_starts_only_when_the_last_fault_is_gone():
    plan = steps(
        [
            {"at": "20s", "load": {"users": 150}, "for": "15s"},
            {"at": "22s", "brownout": {"target": "views-east", "ms": 1500}, "for": "10s"},
        ]
    )
    assert plan.first_fault_at == 20 and plan.recovery_at == 35  # the load spike outlasts the brownout


def test_a_fault_left_until_the_end_has_no_recovery_in_the_run():
    plan = steps([{"at": "5s", "kill_instance": "recommender-west"}])
    assert plan.recovery_at is None


def test_a_profile_switch_is_a_remedy_not_a_fault():
    plan = steps([{"at": "5s", "profile": "resilient"}])
    assert plan.first_fault_at is None
