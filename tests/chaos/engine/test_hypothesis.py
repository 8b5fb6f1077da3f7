"""Probes over what users saw: success, p99, symptoms; starved windows deviate, thin ones have no data."""

from __future__ import annotations

from chaos.engine.hypothesis import check, finished_between, steady_counts, waiting_through
from chaos.engine.scenario import Hypothesis
from loadtest.requests_reader import RequestRow


def row(
    t: float, ok: bool = True, action: str = "feed", dc: str = "dc-west", latency_ms: float = 10, **symptoms: int
) -> RequestRow:
    return RequestRow(t=t, dc=dc, action=action, ok=ok, latency_ms=latency_ms, counts=symptoms)


HYP = Hypothesis.model_validate(
    {
        "window": "10s",
        "min_requests": 5,
        "probes": [
            {"success_rate": {"action": "feed", "dc": "dc-west", "min": 0.9}},
            {"p99": {"action": "feed", "max_ms": 500}},
            {"symptom": {"name": "zero_view_displays", "max": 0}},
            {"symptom": {"name": "failed_logins", "max": 1}},
        ],
    }
)


def test_every_probe_holds_on_a_healthy_window():
    result = check(HYP, [row(t) for t in range(20)], 20, "before", (0, 20))
    assert result.met is True and [p.status for p in result.probes] == ["held"] * 4
    assert result.probes[0].shown == "100%"


def test_each_probe_deviates_on_its_own_evidence():
    rows = [row(t, ok=t % 3 != 0) for t in range(20)]  # a third fail
    rows += [
        row(1, latency_ms=5000),
        row(2, zero_view_displays=3),
        row(3, action="login", ok=False),
        row(4, action="login", ok=False),
    ]
    result = check(HYP, rows, 20, "during", (0, 20))
    assert [p.status for p in result.probes] == ["deviated"] * 4
    assert result.met is False


def test_a_thin_window_is_no_data_but_a_starved_one_deviates():
    before = check(HYP, [row(t / 2) for t in range(40)], 20, "before", (0, 20))  # 2 feeds a second
    thin = check(HYP, [row(1), row(2)], 30, "during", (20, 30))
    assert thin.probes[0].status == "no data"
    starved = check(HYP, [row(1), row(2)], 30, "during", (20, 30), steady_counts(before))
    assert starved.probes[0].status == "deviated" and "only 2 of ~20" in starved.probes[0].shown


def test_a_window_of_a_few_errors_is_not_served_however_many_answered():
    """dc-west's users in a partition: 4 answers in a window where ~20 would have been served, every one an error
    (the steady state seen over the 5 s before the fault). As answers, 4 after 10 is within chance and too few for a
    rate: "no data", and the check held. Not one was served: that is no chance."""
    before = check(HYP, [row(15 + t / 2) for t in range(10)], 20, "before", (15, 20))  # 2 feeds a second, 5 s
    errors = [row(21 + t, ok=False) for t in range(4)]
    served = check(HYP, errors, 30, "during", (20, 30), steady_counts(before))
    assert served.probes[0].status == "deviated" and "only 0 of ~20 requests served" in served.probes[0].shown
    assert served.met is False
    # the same 4 answers, served, could be chance: a thin window, no data
    thin = check(HYP, [row(21 + t) for t in range(4)], 30, "during", (20, 30), steady_counts(before))
    assert thin.probes[0].status == "no data" and thin.probes[0].served == 4


def test_the_steady_state_counts_the_requests_it_served():
    """A probe whose action fails often in the steady state is judged against what it served then, not against
    what was answered: the same share served before and after is no starvation."""
    flaky = Hypothesis.model_validate(
        {"window": "10s", "min_requests": 5, "probes": [{"success_rate": {"action": "feed", "min": 0.3}}]}
    )
    before = check(flaky, [row(t / 4, ok=t % 5 < 2) for t in range(80)], 20, "before", (0, 20))  # 4 a s, 40% ok
    assert steady_counts(before)[before.probes[0].probe].served == 32
    during = check(
        flaky, [row(20 + t / 4, ok=t % 5 < 2) for t in range(40)], 30, "during", (20, 30), steady_counts(before)
    )
    assert during.probes[0].status == "held" and during.met is True


def test_a_rare_action_short_by_chance_is_not_starved_but_one_that_stopped_is():
    """Logins, ~16 in a window at the steady state: 6 after 16 is luck (2.6%), none after 16 is not (0.002%)."""
    rare = Hypothesis.model_validate(
        {"window": "16s", "probes": [{"success_rate": {"action": "login", "min": 0.85, "min_requests": 3}}]}
    )
    before = check(rare, [row(t, action="login") for t in range(16)], 16, "before", (0, 16))
    unlucky = check(
        rare,
        [row(t, action="login") for t in (17, 20, 22, 25, 28, 30)],
        32,
        "recovery",
        (16, 32),
        steady_counts(before),
    )
    assert unlucky.met is True and unlucky.probes[0].shown == "100%", unlucky.probes
    stopped = check(rare, [], 32, "recovery", (16, 32), steady_counts(before))
    assert stopped.met is False and "only 0 of ~16" in stopped.probes[0].shown


def test_a_window_before_the_fault_that_was_high_by_chance_does_not_make_a_normal_one_starved():
    """retry-storm on half a core: 18 logins in the 16 s before the stall, then 7-10 a window with every one
    answered (the steady rate was ~9). The count before is a sample too: 7 after 18 is 2% luck at one rate, and
    6 after 19 (0.7%) one of the ~15 windows a run judges after each fault."""
    rare = Hypothesis.model_validate(
        {"window": "16s", "probes": [{"success_rate": {"action": "login", "min": 0.85, "min_requests": 3}}]}
    )
    before = check(rare, [row(t * 0.8, action="login") for t in range(18)], 16, "before", (0, 16))
    after = check(
        rare, [row(40 + t * 2, action="login") for t in range(7)], 56, "recovery", (40, 56), steady_counts(before)
    )
    assert after.met is True and after.recovered, after.probes
    before = check(rare, [row(t * 0.8, action="login") for t in range(19)], 16, "before", (0, 16))
    six = check(
        rare, [row(40 + t * 2, action="login") for t in range(6)], 56, "recovery", (40, 56), steady_counts(before)
    )
    assert six.recovered, six.probes
    before = check(rare, [row(t * 0.8, action="login") for t in range(18)], 16, "before", (0, 16))
    short = check(rare, [row(50, action="login")], 56, "recovery", (40, 56), steady_counts(before))
    assert short.met is False and "only 1 of ~18" in short.probes[0].shown  # 1 after 18 is 0.004%: starved


def test_rows_are_chosen_by_when_they_finished_and_started():
    rows = [row(0, latency_ms=15_000), row(12), row(25)]
    assert [r.t for r in finished_between(rows, 10, 20)] == [0, 12]
    assert [r.t for r in finished_between(rows, 10, 20, started_after=5)] == [12]
    assert [r.t for r in waiting_through(rows + [row(8, latency_ms=20_000)], 10, 20)] == [8]  # not 0: answered at 15


def test_requests_waiting_through_the_window_fail_it_but_are_no_answers():
    before = check(HYP, [row(t / 2) for t in range(40)], 20, "before", (0, 20))  # 2 feeds a second
    served = [row(20 + t) for t in range(10)]  # half of them: the other users' requests hang
    hung = [row(15, latency_ms=60_000), row(16, latency_ms=60_000)]
    assert check(HYP, served, 30, "during", (20, 30), steady_counts(before)).met is True
    seen = check(HYP, served, 30, "during", (20, 30), steady_counts(before), waiting_through(hung, 20, 30))
    assert seen.probes[0].status == "deviated" and seen.probes[0].value == round(10 / 12, 4)
    assert seen.probes[2].status == "held" and seen.probes[2].requests == 10  # symptoms: answers only
    all_hung = [row(15 + t / 10, latency_ms=60_000) for t in range(4)]  # fewer than min_requests, no answer
    starved = check(HYP, [], 30, "during", (20, 30), steady_counts(before), waiting_through(all_hung, 20, 30))
    assert starved.probes[0].status == "deviated" and "only 0 of ~20" in starved.probes[0].shown


STORM = Hypothesis.model_validate(
    {
        "window": "8s",
        "probes": [
            {"success_rate": {"min": 0.85}},
            {"success_rate": {"action": "login", "min": 0.85, "min_requests": 3}},
        ],
    }
)


def test_a_rare_action_is_judged_on_its_own_minimum():
    feeds = [row(t / 4) for t in range(32)]
    two = check(STORM, feeds + [row(1, action="login", ok=False)] * 2, 8, "recovery", (0, 8))
    assert two.probes[1].status == "no data"  # 2 logins: fewer than the probe's own 3
    three = check(STORM, feeds + [row(1, action="login", ok=False)] * 3, 8, "recovery", (0, 8))
    assert three.probes[1].status == "deviated"  # 3 failed logins judge, though the hypothesis' minimum is 8


def test_recovered_only_when_every_probe_holds_on_its_own_data():
    """A stuck naive stack: the logged-in users' feeds succeed while the logins of the logged-out ones have not
    failed yet (~9 s each): the steady state "holds" on the feeds alone, and that is no recovery."""
    feeds = [row(t / 4) for t in range(32)]
    no_logins = check(STORM, feeds, 8, "recovery", (0, 8))
    assert no_logins.met is True and no_logins.recovered is False
    logins_ok = check(STORM, feeds + [row(2, action="login")] * 3, 8, "recovery", (0, 8))
    assert logins_ok.met is True and logins_ok.recovered is True
