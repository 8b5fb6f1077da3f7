"""The registry of actions: one declaration per kind, parsing (shorthands, one action per step, errors naming the
field), targets checked against a topology, and dispatch through the declared handler."""
from __future__ import annotations

import pytest

from chaos.faults.actions import parse_action
from services.common.errors import ConfigError


def test_shorthands_and_round_trip():
    on = parse_action({"power_on": "dc-east"}, "x", "body")
    assert on.spec.dc == "dc-east" and on.spec.boot_order == []
    latency = parse_action({"latency": {"from": "dc-west", "to": "views", "ms": 50}, "for": "3s", "id": "lag"}, "x", "b")
    assert latency.to_data() == {"latency": {"from": "dc-west", "to": "views", "ms": 50.0, "jitter_ms": 0},
                                 "for": "3s", "id": "lag"}  # fmt: skip
    assert parse_action(latency.to_data(), "x", "b") == latency


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"partition": ["dc-east"]}, "field 'b.partition': two names"),
        ({"power_off": ""}, "field 'b.power_off'"),
        ({"errors": {"from": "dc-west", "to": "dc-east", "rate": 1.5}}, "field 'b.errors.rate'"),
        ({"brownout": {"target": "views-east", "ms": 10, "extra": 1}}, "field 'b.brownout.extra'"),
        ({"power_off": "dc-east", "kill_instance": "x"}, "exactly one action"),
        ({"load": {"users": 10}, "id": "Bad Id"}, "field 'b.id'"),
    ],
)
def test_bad_actions_name_the_field(body, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse_action(body, "x", "b")
