from __future__ import annotations

from services.common.names import DEPENDENCIES, GATEWAY, SERVICES, USER_ACTIONS


def test_the_dependencies_are_every_service_but_the_gateway() -> None:
    assert set(DEPENDENCIES) == set(SERVICES) - {GATEWAY}
    assert len(set(SERVICES)) == len(SERVICES) == 5


def test_every_user_action_has_a_gateway_route() -> None:
    from services.gateway.api import ROUTES

    assert set(ROUTES) == set(USER_ACTIONS)
