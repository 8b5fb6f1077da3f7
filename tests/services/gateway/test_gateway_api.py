from __future__ import annotations

from services.common.names import USER_ACTIONS
from services.gateway.api import ROUTES
from services.gateway.app import router


def test_every_user_action_has_a_gateway_route_the_gateway_serves() -> None:
    assert set(ROUTES) == set(USER_ACTIONS)
    served = {(method, route.path) for route in router.routes for method in getattr(route, "methods", ())}
    assert set(ROUTES.values()) <= served
