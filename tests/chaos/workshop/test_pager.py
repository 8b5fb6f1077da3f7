"""The pager's multi-window burn-rate math on requests.csv rows (the reader's RequestRow, as users record them);
tests/chaos/workshop/test_exercise.py::test_a_real_round_pages_the_room_and_scores_the_ack has it page on a
live stack."""

from __future__ import annotations

from chaos.workshop.pager import ALL, FAST_BURN, LATENCY_SLO_MS, SLO, Pager, Windows, burns, firing
from loadtest.requests_reader import RequestRow


def rows(
    start: float, end: float, ok: bool, dc: str = "dc-west", per_s: int = 10, latency_ms: float = 20
) -> list[RequestRow]:
    return [
        RequestRow(t=start + i / per_s, dc=dc, action="feed", ok=ok, latency_ms=latency_ms)
        for i in range(int((end - start) * per_s))
    ]


def test_the_windows_scale_the_workbooks_hour_and_five_minutes_to_the_round():
    assert Windows.for_round(24 * 60) == Windows(60.0, 5.0)  # a 24-min round: 1/24 and 1/12 of that (5 s floor)
    assert Windows.for_round(48 * 60) == Windows(120.0, 10.0)
    assert Windows.for_round(90) == Windows(20.0, 5.0)  # short rounds: enough requests in each window


def test_the_burn_rate_is_the_bad_share_over_the_error_budget():
    w = Windows(20.0, 5.0)
    # 20 s of users at 10/s: the last 5 s all failed -> long: 50/200 bad, short: 50/50 bad
    found = {b.scope: b for b in burns(rows(0, 15, True) + rows(15, 20, False), 20.0, w)}
    assert found[ALL].long == round(0.25 / (1 - SLO), 1) and found[ALL].short == round(1 / (1 - SLO), 1)
    slow = rows(0, 20, True, latency_ms=LATENCY_SLO_MS + 1)  # answered, but later than the SLO allows
    assert {b.scope: b for b in burns(slow, 20.0, w)}[ALL].long == round(1 / (1 - SLO), 1)


def test_both_windows_must_burn_a_spike_that_ended_does_not_page():
    w = Windows(20.0, 5.0)
    spike = rows(0, 5, True) + rows(5, 10, False) + rows(10, 20, True)  # bad 5-10, fine since
    found = burns(spike, 20.0, w)
    assert found[0].long >= FAST_BURN and found[0].short == 0 and firing(found) is None
    # one data center's users alone page, though all users together burn below 14.4x over the long window
    split = rows(0, 20, True, "dc-east") + rows(0, 15, True, "dc-west") + rows(15, 20, False, "dc-west")
    found = burns(split, 20.0, w)
    burning = firing(found)
    assert found[0].scope == ALL and found[0].long < FAST_BURN
    assert burning is not None and burning.scope == "dc-west" and burning.short >= FAST_BURN


def test_a_burn_below_fourteen_point_four_does_not_page():
    w = Windows(20.0, 5.0)
    # 1 bad in 10 everywhere: 10x the budget, below 14.4x
    mixed = [r for i, r in enumerate(rows(0, 20, True)) if i % 10] + [
        r for i, r in enumerate(rows(0, 20, False)) if not i % 10
    ]
    found = burns(mixed, 20.0, w)
    assert 9 <= found[0].long <= 11 and firing(found) is None


def test_the_pager_pages_once_and_never_before_a_whole_long_window_of_users():
    pager = Pager(Windows(20.0, 5.0))
    pager.feed(rows(100, 105, False))  # the stack's first seconds, failing: too early to tell
    assert pager.check(105.0) is None
    pager.feed(rows(105, 125, False))
    page = pager.check(125.0)
    assert page is not None and page.t == 125.0 and page.scope == ALL and page.burn_short >= FAST_BURN
    assert "gateway" == page.runbooks[0] and "14.4x" in page.text()
    pager.feed(rows(125, 130, False))
    assert pager.check(130.0) is None and pager.page is page  # one page a round


def test_requests_hanging_on_a_dark_data_center_page_though_no_row_says_so():
    """dc-east's users wait on a dark gateway and write no row until they give up: silence is not health."""
    pager = Pager(Windows(20.0, 5.0))
    healthy = rows(0, 40, True, "dc-east") + rows(0, 40, True, "dc-west")
    fired = None
    for now in range(1, 60):
        pager.feed(r for r in healthy if now - 1 < r.finished <= now)
        if now > 40:
            pager.feed(rows(now - 1, now, True, "dc-west"))  # dc-west's users are still served
        fired = pager.check(float(now)) or fired
        if now <= 40:
            assert fired is None, now  # a steady baseline never pages
    assert fired is not None and fired.scope == "dc-east" and 41 <= fired.t <= 44
    assert pager.owed["dc-east"] == 10.0  # what dc-east's users were owed a second, untouched by the silence


def test_a_chance_dip_of_a_few_requests_does_not_page():
    pager = Pager(Windows(20.0, 5.0))
    steady = rows(0, 120, True, per_s=6)
    dips = [r for i, r in enumerate(steady) if not (600 <= i < 660 and i % 10 == 0)]  # a tenth missing for 10 s
    for now in range(1, 120):
        pager.feed(r for r in dips if now - 1 < r.finished <= now)
        assert pager.check(float(now)) is None, now


def test_the_users_ramp_before_the_baseline_does_not_page():
    ramp, steady = rows(100, 125, False), rows(125, 150, True)  # every login of the ramp failed on a busy machine
    watched = Pager(Windows(20.0, 5.0))
    watched.watch_from(125.0)  # the scenario's baseline began
    unwatched = Pager(Windows(20.0, 5.0))
    for pager in (watched, unwatched):
        pager.feed(ramp)
    assert unwatched.check(125.0) is not None  # what paged teams before any fault
    assert watched.check(125.0) is None
    watched.feed(steady)
    assert watched.check(150.0) is None
    watched.feed(rows(150, 175, False))  # the fault, after the baseline: pages
    assert watched.check(175.0) is not None
