from __future__ import annotations

from services.common.names import DEPENDENCIES, GATEWAY, SERVICES


def test_the_dependencies_are_every_service_but_the_gateway() -> None:
    assert set(DEPENDENCIES) == set(SERVICES) - {GATEWAY}
    assert len(set(SERVICES)) == len(SERVICES) == 5
