"""The point of the testbed: the same power loss, naive vs resilient policies, contrasted both ways."""

from __future__ import annotations

from chaos.report import build_summary


def test_resilient_users_barely_notice_what_naive_users_suffer(naive_run, resilient_run):
    naive, resilient = build_summary(naive_run).phase("outage"), build_summary(resilient_run).phase("outage")
    # naive: dc-east's users wait for their dark data center, dc-west's see lies (0 views, generic feeds)
    naive_east, resilient_east = naive.by_dc["dc-east"]["feed"], resilient.by_dc["dc-east"]["feed"]
    assert naive_east.p50_ms > 20 * resilient_east.p50_ms
    # resilient: the worst a dc-east user sees is one edge try lost to the dark data center (0.5 s, the
    # locustfile's EDGE_TRY_TIMEOUT_S) plus one full request deadline (2 s) at dc-west
    assert resilient_east.p99_ms < 2500 < naive_east.p50_ms
    assert naive.symptoms["zero_view_displays"] > 0 and naive.symptoms["generic_feeds"] > 0
    # resilient: failover at the edge and to dc-west's replicas; honest fallbacks, never 0 views
    assert resilient.feed_success_by_dc["dc-east"] >= 0.95 and resilient.feed_success_by_dc["dc-west"] >= 0.95
    assert resilient.symptoms["zero_view_displays"] == 0 and resilient.symptoms["generic_feeds"] == 0
    assert resilient.actions["feed"].p99_ms < naive.actions["feed"].p50_ms


def test_retries_amplify_load_only_under_the_naive_profile(naive_run, resilient_run):
    naive, resilient = build_summary(naive_run).phase("outage"), build_summary(resilient_run).phase("outage")
    # the surviving data center takes the retry storm (3 tries at every layer: 3x and more on a quiet
    # machine, ~2.6x when the machine itself is overloaded and fewer calls go out); budgets cap the other
    assert naive.amplification_by_dc["dc-west"] > 2
    assert resilient.amplification <= 1.5


def test_both_recover_once_power_returns(naive_run, resilient_run):
    for run in (naive_run, resilient_run):
        recovery = build_summary(run).phase("recovery")
        assert recovery.actions["feed"].count > 0
        assert recovery.feed_success_by_dc["dc-west"] >= 0.9
