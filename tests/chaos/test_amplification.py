from __future__ import annotations

import pytest

from chaos.amplification import by_phase


def snap(phase: str, **instances: tuple[str, float, float, float]) -> dict:
    return {
        "event": "metrics",
        "phase": phase,
        "instances": {n: {"service": s, "start": st, "attempts": a, "requests": r} for n, (s, st, a, r) in instances.items()},
    }


def test_amplification_counts_every_attempt_per_user_request_against_the_baseline():
    events = [
        snap("baseline", gw=("gateway", 1, 0, 0), rec=("recommender", 1, 0, 0)),
        snap("outage", gw=("gateway", 1, 200, 100), rec=("recommender", 1, 100, 200)),  # 3 attempts/request
        # in the outage the recommender retried 3x at views and the gateway 3x at the recommender
        snap("recovery", gw=("gateway", 1, 500, 150), rec=("recommender", 1, 700, 400)),
        # rec restarted (new start time): its counters begin again from zero
        snap("end", gw=("gateway", 1, 800, 250), rec=("recommender", 2, 50, 100)),
    ]
    phases = by_phase(events)
    assert phases["baseline"] == {"attempts": 300, "user_requests": 100, "attempts_per_request": 3.0, "amplification": 1.0}
    assert phases["outage"]["attempts_per_request"] == pytest.approx(900 / 50)
    assert phases["outage"]["amplification"] == pytest.approx(6.0)
    assert phases["recovery"]["attempts"] == 300 + 50


def test_a_dead_instance_counts_nothing_and_no_requests_means_no_ratio():
    events = [snap("baseline", gw=("gateway", 1, 0, 0), views=("views", 1, 0, 0)), snap("outage", views=("views", 1, 5, 0))]
    phases = by_phase(events)
    assert phases["baseline"]["user_requests"] == 0
    assert phases["baseline"]["attempts_per_request"] is None and phases["baseline"]["amplification"] is None
