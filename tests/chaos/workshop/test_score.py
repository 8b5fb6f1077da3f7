"""Timers and points from what users saw: synthetic requests.csv rows in the shape the load generator writes
(tests/loadtest holds the reader to the real file), a real hypothesis, places resolved in the real topology."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.engine.scenario import Hypothesis, load_scenario
from chaos.topology import Topology, load_topology
from chaos.workshop import score as weights
from chaos.workshop.score import Acted, Declared, Place, Truth, localization, lost_writes, score
from loadtest.requests_reader import RequestRow

PROJECT = Path(__file__).resolve().parents[3]
HYP = Hypothesis.model_validate(
    {"window": "4s", "min_requests": 4, "probes": [{"success_rate": {"action": "feed", "min": 0.9}}]}
)
FRAGILE: Topology = load_topology(PROJECT / "topologies" / "fragile.yaml")
RESILIENT: Topology = load_topology(PROJECT / "topologies" / "resilient.yaml")


def place(name: str, topology: Topology = FRAGILE) -> Place:
    instances = frozenset(topology.find(name))
    return Place(name, instances, frozenset(topology.dc_of(i) for i in instances), name in topology.data_centers)


def truth(*targets: str, types: tuple[str, ...] = ("power-loss",), topology: Topology = FRAGILE) -> Truth:
    instances = frozenset(i for t in targets for i in topology.find(t))
    return Truth(False, instances, frozenset(topology.dc_of(i) for i in instances), frozenset(types))


DC_EAST_DARK = truth("dc-east")
POWER_LOSS = Declared(112.0, "zero_view_displays", place("dc-east"), "power-loss")


def rows(start: float, end: float, ok: bool, per_s: int = 4) -> list[RequestRow]:
    """``per_s`` feed requests a second finishing between start and end, all ok or all failed."""
    return [
        RequestRow(t=start + i / per_s, dc="dc-west", action="feed", ok=ok, latency_ms=20)
        for i in range(int((end - start) * per_s))
    ]


OUTAGE = rows(60, 100, True) + rows(100, 130, False) + rows(130, 170, True)  # failing 100-130


def test_an_outage_met_by_a_team_gets_its_timers_and_every_part_from_the_onset():
    early = Declared(90.0, "failed_requests", place("dc-west"), "overload")
    s = score(HYP, OUTAGE, 100.0, 170.0, [early, POWER_LOSS], DC_EAST_DARK, paged_at=104.0, acked_at=109.0)
    assert s.users_hurt and s.detect_s == 12.0 and s.false_alarms == 1 and s.ack_s == 5.0
    assert 30 <= s.mitigate_s <= 36 and s.recover_s == s.mitigate_s  # success back above 90% once the window clears
    assert s.requests == len(rows(100, 170, True)) and s.failed == 120
    assert 276 <= s.expected <= 280 and s.unserved == 120  # every owed answer came (the last as the load ends)
    assert s.localization == 1.0 and s.root_cause and s.diagnosis["where"] == "dc-east"  # the last declaration
    assert s.parts["acknowledge"] == 100 - 2 * 5 and s.parts["detect"] == 150 - 12
    assert s.parts["localize"] == 150 and s.parts["root cause"] == 150
    assert s.parts["mitigate"] == 250 - round(s.mitigate_s) and s.parts["impact"] == round(200 * (1 - 120 / s.expected))
    assert s.penalties["false alarms"] == 100
    assert s.points == sum(s.parts.values()) - sum(s.penalties.values())


def test_the_wrong_data_center_loses_the_localization_points_and_only_those():
    right = score(HYP, OUTAGE, 100.0, 170.0, [POWER_LOSS], DC_EAST_DARK)
    wrong = score(
        HYP, OUTAGE, 100.0, 170.0, [Declared(112.0, "zero_view_displays", place("dc-west"), "power-loss")], DC_EAST_DARK
    )
    assert right.localization == 1.0 and wrong.localization == 0.0 and wrong.root_cause
    assert right.points - wrong.points == weights.LOCALIZE_MAX
    assert {k: v for k, v in right.parts.items() if k != "localize"} == {
        k: v for k, v in wrong.parts.items() if k != "localize"
    }


def test_localization_is_strict_about_places():
    views_slow = truth("views-east", types=("slow-dependency",), topology=RESILIENT)
    assert localization(place("views-east", RESILIENT), views_slow) == 1.0
    assert localization(place("dc-east", RESILIENT), views_slow) == weights.AROUND  # the right DC, coarser
    assert localization(place("views", RESILIENT), views_slow) == weights.AROUND  # the service, both replicas
    assert localization(place("dc-west", RESILIENT), views_slow) == 0.0  # the wrong data center
    assert localization(place("views-west", RESILIENT), views_slow) == 0.0  # the healthy replica
    assert localization(place("gateway-east", RESILIENT), views_slow) == 0.0
    assert localization(place("auth-east"), DC_EAST_DARK) == 1.0  # an instance inside the dark DC


def test_the_root_cause_is_right_or_nothing():
    s = score(
        HYP,
        OUTAGE,
        100.0,
        170.0,
        [Declared(112.0, "zero_view_displays", place("dc-east"), "network-partition")],
        DC_EAST_DARK,
    )
    assert not s.root_cause and s.parts["root cause"] == 0 and s.localization == 1.0


def test_a_declaration_in_a_no_fault_control_round_costs_points():
    healthy = rows(60, 170, True)
    calm = score(HYP, healthy, None, 170.0, [], Truth(control=True))
    alarmed = score(HYP, healthy, None, 170.0, [POWER_LOSS], Truth(control=True))
    assert calm.control and calm.points == calm.out_of and calm.false_alarms == 0
    assert alarmed.false_alarms == 1 and calm.points - alarmed.points == weights.FALSE_ALARM
    # the stand-in step's onset changes nothing: a control round has none to find
    assert score(HYP, healthy, 100.0, 170.0, [POWER_LOSS], Truth(control=True)).points == alarmed.points


def test_each_hint_costs_more_than_the_last():
    costs = [
        score(HYP, OUTAGE, 100.0, 170.0, [POWER_LOSS], DC_EAST_DARK).points
        - score(HYP, OUTAGE, 100.0, 170.0, [POWER_LOSS], DC_EAST_DARK, hints=n).points
        for n in (1, 2, 3)
    ]
    assert costs == [25, 75, 175]


def test_an_action_after_which_users_success_fell_is_harmful():
    # healthy until 100; the team powers dc-west off at 100 and its users fail from then on
    history = rows(60, 100, True) + rows(100, 120, False) + rows(120, 170, True)
    power_off = Acted(100.0, "power-off", "dc-west")
    harmless = Acted(140.0, "profile", "resilient")  # users as served after it as before
    s = score(HYP, history, 90.0, 170.0, [POWER_LOSS], DC_EAST_DARK, actions=[power_off, harmless])
    assert s.harmful == ["power-off dc-west"] and s.actions == 2
    assert s.penalties["harmful actions"] == weights.HARMFUL and s.penalties["actions taken"] == 2 * weights.ACTION


def test_an_unacknowledged_page_earns_nothing():
    unacked = score(HYP, OUTAGE, 100.0, 170.0, [POWER_LOSS], DC_EAST_DARK, paged_at=104.0)
    assert unacked.paged and unacked.ack_s is None and unacked.parts["acknowledge"] == 0
    assert unacked.out_of == weights.START and not unacked.not_scored


def test_a_team_never_paged_neither_gains_nor_loses_the_acknowledge_points():
    """Issue 18: no page, nothing to acknowledge: the part is not scored (n/a), so the round is out of the other
    parts' 900: a team the pager never paged is scored on what it did, with no free 100 and no 0."""
    quiet = score(HYP, OUTAGE, 100.0, 170.0, [POWER_LOSS], DC_EAST_DARK)
    acked = score(HYP, OUTAGE, 100.0, 170.0, [POWER_LOSS], DC_EAST_DARK, paged_at=104.0, acked_at=109.0)
    assert not quiet.paged and "acknowledge" not in quiet.parts and quiet.not_scored == {"acknowledge": "no page"}
    assert quiet.out_of == weights.START - weights.ACK_MAX and acked.out_of == weights.START
    assert acked.points - quiet.points == acked.parts["acknowledge"] == 100 - 2 * 5
    assert quiet.points == sum(quiet.parts.values()) - sum(quiet.penalties.values())
    # a no-fault control round pages nobody: every other part in full, the acknowledge part not scored
    calm = score(HYP, rows(60, 170, True), None, 170.0, [], Truth(control=True))
    assert calm.points == calm.out_of == weights.START - weights.ACK_MAX and "acknowledge" not in calm.parts


def test_a_fault_users_never_felt_costs_nothing_but_detection():
    history = rows(60, 170, True)
    detected = score(
        HYP, history, 100.0, 170.0, [Declared(105.0, "stale_views", place("dc-east"), "power-loss")], DC_EAST_DARK
    )
    missed = score(HYP, history, 100.0, 170.0, [], DC_EAST_DARK)
    assert detected.mitigate_s == detected.recover_s == 0 and not detected.users_hurt
    assert missed.detect_s is None and missed.parts["detect"] == 0 and detected.parts["detect"] == 150 - 5
    assert missed.parts["localize"] == missed.parts["root cause"] == 0  # nothing declared, nothing found


def test_no_recovery_before_the_end_and_quiet_windows_are_neutral():
    history = rows(60, 100, True) + rows(100, 150, False)  # failing until the load stopped at 150
    s = score(HYP, history, 100.0, 200.0, [POWER_LOSS], DC_EAST_DARK)
    assert s.mitigate_s is None and s.recover_s is None and s.parts["mitigate"] == 0


def test_the_end_of_the_load_is_not_an_outage():
    history = rows(60, 100, True) + rows(100, 110, False) + rows(110, 150, True)  # then the run and its users end
    s = score(HYP, history, 100.0, 300.0, [POWER_LOSS], DC_EAST_DARK)
    assert s.recover_s is not None and s.recover_s < 20


def test_panic_stops_the_clocks_it_ends():
    history = rows(60, 100, True) + rows(100, 120, False)  # the panic at 120 stopped the run and its users
    s = score(HYP, history, 100.0, 200.0, [POWER_LOSS], DC_EAST_DARK, panic_at=120.0)
    assert s.mitigate_s == s.recover_s == 20.0


def test_an_exercise_ended_before_the_fault_came():
    early = [
        Declared(80.0, "failed_requests", place("dc-east"), "power-loss"),
        Declared(90.0, "failed_requests", place("dc-east"), "power-loss"),
    ]
    s = score(HYP, rows(60, 100, True), None, 100.0, early, DC_EAST_DARK)
    assert s.detect_s is None and s.false_alarms == 2 and s.points == s.out_of - 2 * weights.FALSE_ALARM


@pytest.mark.parametrize("lost, cost", [(None, 0), (0, 0), (10, 20), (1000, 200)])
def test_lost_writes_cost_points_capped(lost, cost):
    base = score(HYP, rows(60, 170, True), 100.0, 170.0, [POWER_LOSS], DC_EAST_DARK)
    s = score(HYP, rows(60, 170, True), 100.0, 170.0, [POWER_LOSS], DC_EAST_DARK, lost_writes=lost)
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
    s = score(HYP, history, 100.0, 150.0, [POWER_LOSS], DC_EAST_DARK)
    assert s.failed == 20 and 196 <= s.expected <= 200 and s.unserved == s.expected - 120  # 120 served


def test_the_parts_add_up_to_the_start_and_the_docs_state_every_weight():
    assert weights.START == 1000
    doc = (PROJECT / "docs" / "workshop.md").read_text()
    for name in (
        "ACK_MAX",
        "DETECT_MAX",
        "LOCALIZE_MAX",
        "ROOT_CAUSE_MAX",
        "MITIGATE_MAX",
        "IMPACT_MAX",
        "FALSE_ALARM",
        "HARMFUL",
        "ACTION",
    ):
        assert f"{name} = {getattr(weights, name)}" in doc, name


def test_the_worked_example_of_the_docs_is_what_the_score_computes():
    """docs/workshop.md's worked example (dc-power-loss held, the real hypothesis), played as rows: every part
    and penalty of its table, its total and its two variants are what score() gives."""
    onset = 1000.0

    def served(
        k: int,
    ) -> bool:  # the k-th tenth of a second after the onset: 60% served, 1 in 6 from 30 s, all from 48 s
        return k % 10 < 6 if 0 <= k < 300 else k % 60 < 10 if 300 <= k < 480 else True

    history = [  # 10 feeds a second, half from each data center, from 30 s before the onset to 90 s after
        RequestRow(t=onset + k / 10, dc=("dc-east", "dc-west")[k % 2], action="feed", ok=served(k), latency_ms=0)
        for k in range(-300, 900)
    ]
    hyp = load_scenario("dc-power-loss").hypothesis
    alarm = Declared(onset - 20, "failed_requests", place("dc-west"), "overload")
    right = Declared(onset + 25, "zero_view_displays", place("dc-east"), "power-loss")
    off_west = Acted(onset + 30, "power-off", "dc-west")
    fixes = [Acted(onset + 40, "power-on", "dc-east"), Acted(onset + 45, "profile", "resilient")]
    paged = {"paged_at": onset + 6, "acked_at": onset + 14}
    s = score(
        hyp, history, onset, onset + 90, [alarm, right], DC_EAST_DARK, hints=1, actions=[off_west, *fixes], **paged
    )
    assert (s.ack_s, s.detect_s, s.mitigate_s, s.expected, s.unserved) == (8.0, 25.0, 58.0, 899, 270)  # "~900"
    assert s.harmful == ["power-off dc-west"]
    assert s.parts == {
        "acknowledge": 84,
        "detect": 125,
        "localize": 150,
        "root cause": 150,
        "mitigate": 192,
        "impact": 140,
    }
    assert s.penalties == {
        "false alarms": 100,
        "hints": 25,
        "harmful actions": 100,
        "actions taken": 30,
        "lost writes": 0,
    }
    wrong_dc = Declared(right.t, right.symptom, place("dc-west"), right.fault)
    elsewhere = score(
        hyp, history, onset, onset + 90, [alarm, wrong_dc], DC_EAST_DARK, hints=1, actions=[off_west, *fixes], **paged
    )
    careful = score(hyp, history, onset, onset + 90, [alarm, right], DC_EAST_DARK, actions=fixes, **paged)
    doc = (PROJECT / "docs" / "workshop.md").read_text()
    table = doc[doc.index("**A worked example.**") :]
    for part, points in s.parts.items():
        assert f"| {points} |" in table, part
    assert f"| 841 - 255 | **{s.points}** |" in table and s.points == 586
    assert f"would be gone ({elsewhere.points})" in table and f"one action fewer), {careful.points}" in table
    unpaged = score(hyp, history, onset, onset + 90, [alarm, right], DC_EAST_DARK, hints=1, actions=[off_west, *fixes])
    assert f"{unpaged.points} of {unpaged.out_of}." in table and (unpaged.points, unpaged.out_of) == (502, 900)


def test_half_the_users_hanging_through_the_window_is_not_mitigated():
    # dc-west's users are served at 4/s throughout; dc-east's two users' requests hang from the onset until the
    # end (answered when power came back at 150): the answered half alone would read as 100% success
    west = rows(60, 150, True)
    east = [RequestRow(t=60 + i / 2, dc="dc-east", action="feed", ok=True, latency_ms=20) for i in range(80)]
    hung = [RequestRow(t=100.0 + i / 10, dc="dc-east", action="feed", ok=True, latency_ms=50_000) for i in range(2)]
    s = score(HYP, west + east + hung, 100.0, 150.0, [POWER_LOSS], DC_EAST_DARK)
    assert s.users_hurt and s.mitigate_s is None and s.parts["mitigate"] == 0
