from __future__ import annotations

from loadtest.edge import UP_AFTER, EdgeRouter, EdgeSettings

GATEWAYS = [("dc-east", "http://127.0.0.1:1"), ("dc-west", "http://127.0.0.1:2")]


def test_users_go_home_while_home_is_up():
    router = EdgeRouter(GATEWAYS)
    assert router.route("dc-east") == ("dc-east", "http://127.0.0.1:1")
    assert router.route("dc-west") == ("dc-west", "http://127.0.0.1:2")


def test_a_down_gateway_sends_its_users_to_a_live_one_until_it_is_healthy_again():
    router = EdgeRouter(GATEWAYS)
    router.mark_down("dc-east")
    assert router.route("dc-east")[0] == "dc-west"
    for _ in range(UP_AFTER - 1):
        router.observe("dc-east", healthy=True)
        assert router.route("dc-east")[0] == "dc-west"  # one good check is not enough
    router.observe("dc-east", healthy=True)
    assert router.route("dc-east")[0] == "dc-east"


def test_with_every_gateway_down_users_stay_home():
    router = EdgeRouter(GATEWAYS)
    router.observe("dc-east", healthy=False)
    router.observe("dc-west", healthy=False)
    assert router.route("dc-west")[0] == "dc-west"


def test_a_drained_home_is_left_once_the_users_cached_answer_expires_and_failover_avoids_it():
    edge = EdgeSettings(GATEWAYS, failover=True, client_attempts=1)
    assert edge.home("dc-west", resolver_age_s=3.0, now=100.0) == "dc-west"
    edge.apply(True, 1, drained={"dc-west": 100.0})
    assert edge.home("dc-west", resolver_age_s=3.0, now=102.9) == "dc-west"  # its resolver still has the old answer
    assert edge.home("dc-west", resolver_age_s=3.0, now=103.0) == "dc-east"
    assert edge.home("dc-east", resolver_age_s=0.0, now=500.0) == "dc-east"  # other homes are untouched
    edge.router.mark_down("dc-east")
    assert edge.router.route("dc-east", avoid=frozenset(edge.drained))[0] == "dc-east"  # never to a drained one
    edge.apply(True, 1, drained={})
    assert edge.home("dc-west", resolver_age_s=3.0, now=103.0) == "dc-west"
