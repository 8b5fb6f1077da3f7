"""The registry of actions: one declaration per kind, parsing (shorthands, one action per step, errors naming the
field), targets checked against a topology, and dispatch through the declared handler."""

from __future__ import annotations

import random
import re
from dataclasses import replace
from pathlib import Path

import pytest
from fakes.runtime import RecordingRuntime

from chaos.faults.actions import ACTION, KINDS, LEVERS, check_action, make, parse_action
from chaos.faults.injector import FaultInjector
from chaos.faults.model import ActionBase
from chaos.journal import Journal
from chaos.runtime.base import KILL, LINKS, NETWORK, POWER
from services.common.errors import ConfigError, UsageError


def test_shorthands_and_round_trip():
    on = parse_action({"power_on": "dc-east"}, "x", "body")
    assert on.spec.dc == "dc-east" and on.spec.boot_order == []
    latency = parse_action(
        {"latency": {"from": "dc-west", "to": "views", "ms": 50}, "for": "3s", "id": "lag"}, "x", "b"
    )
    assert latency.to_data() == {
        "latency": {"from": "dc-west", "to": "views", "ms": 50.0, "jitter_ms": 0},
        "for": "3s",
        "id": "lag",
    }
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


def test_every_kind_is_declared_once_with_its_properties():
    chaos = Path(__file__).resolve().parents[3] / "chaos"
    sources = {path: path.read_text() for path in chaos.rglob("*.py")}
    for name, kind in KINDS.items():
        declarations = [p for p, text in sources.items() for _ in re.finditer(rf'ActionKind\(\s*"{name}"', text)]
        assert declarations == [chaos / "faults" / "actions.py"], name
        assert kind.name == name and isinstance(kind.fault, bool) and isinstance(kind.reversible, bool)
        assert kind.capability in (None, POWER, KILL, LINKS, NETWORK)
        assert kind.handler is not None or not kind.live  # only what a plan unrolls (a flap) has no handler
    assert not any('getattr(self, f"_' in text for text in sources.values())  # no dispatch by method name
    # a restore, the remedies: every one a lever, its delay or cost declared
    remedies = {"power_on", "profile", "deploy", "restart_instance", "drain", "shed_logins", "dependency"}
    assert {k for k, kind in KINDS.items() if not kind.fault} == remedies == set(LEVERS)
    assert all(KINDS[k].cost for k in LEVERS)
    assert {k for k, kind in KINDS.items() if not kind.reversible} == {"power_on", "flap", "restart_instance"}


def test_action_is_a_union_discriminated_by_kind():
    for name, data in {
        "power_off": "dc-east",
        "power_on": "dc-east",
        "kill_instance": "random",
        "partition": ["dc-east", "dc-west"],
        "load": {"users": 3},
    }.items():
        action = make(name, data)
        assert type(action) is KINDS[name].model and isinstance(action, ActionBase)
        assert ACTION.validate_python(action.model_dump()) == action
        assert parse_action(action.to_data(), "x", "b") == action
    with pytest.raises(ConfigError, match=r"power: field 'power_off': String should match"):
        make("power_off", "DC East", "power")


def test_targets_are_checked_against_the_topology_naming_the_field():
    topology = RecordingRuntime().topology
    check_action(
        parse_action({"latency": {"from": "gateway-west", "to": "views", "ms": 1}}, "x", "b"), topology, "x", "b"
    )
    with pytest.raises(ConfigError, match=r"^x: field 'b.latency.to': 'viewz': no data center, service or instance"):
        check_action(
            parse_action({"latency": {"from": "dc-west", "to": "viewz", "ms": 1}}, "x", "b"), topology, "x", "b"
        )


def test_dispatch_goes_through_the_declared_handler_and_capability(tmp_path, monkeypatch):
    runtime = RecordingRuntime()
    injector = FaultInjector(runtime, Journal(tmp_path), random.Random(1))
    taken = []

    def spy(inj, fault_id, action):
        taken.append((inj, fault_id, action))
        return {"spied": True}

    monkeypatch.setitem(KINDS, "power_off", replace(KINDS["power_off"], handler=spy))
    action = make("power_off", "dc-east")
    assert injector.apply(action) == (None, {"spied": True})
    assert taken == [(injector, "power-off-1", action)] and runtime.power["dc-east"]  # the spy, not the real cut
    with pytest.raises(ConfigError, match="field 'power_off': data center 'dc-mars': unknown"):
        injector.apply(make("power_off", "dc-mars"))
    assert len(taken) == 1  # refused before its handler
    with pytest.raises(
        UsageError,
        match=r"recording runtime cannot do blackhole \(it needs the 'links' capability\); it can do: power_off, power_on",
    ):
        injector.apply(make("blackhole", {"from": "dc-west", "to": "dc-east"}))  # no links capability
    injector.close()


def test_loss_and_rate_are_network_faults_between_two_data_centers_refused_where_the_network_is_not_controlled(
    tmp_path,
):
    """In the kernel only (the services have no packet loss or bandwidth to limit): a runtime without network
    control refuses them naming itself, before a handler runs; their ends must be two data centers."""
    loss = parse_action({"loss": {"from": "dc-west", "to": "dc-east", "percent": 20}, "for": "5s"}, "x", "b")
    rate = parse_action({"rate": {"from": "dc-east", "to": "dc-west", "mbit": 1.5}}, "x", "b")
    assert loss.to_data() == {"loss": {"from": "dc-west", "to": "dc-east", "percent": 20}, "for": "5s"}
    assert parse_action(rate.to_data(), "x", "b") == rate
    assert KINDS["loss"].capability == KINDS["rate"].capability == NETWORK
    with pytest.raises(ConfigError, match="field 'b.loss': 'from' and 'to' are both dc-east: give two data centers"):
        parse_action({"loss": {"from": "dc-east", "to": "dc-east", "percent": 20}}, "x", "b")
    with pytest.raises(ConfigError, match="field 'b.loss.percent'"):
        parse_action({"loss": {"from": "dc-west", "to": "dc-east", "percent": 101}}, "x", "b")
    runtime = RecordingRuntime()
    with pytest.raises(ConfigError, match="field 'b.rate.to': data center 'views': unknown"):
        check_action(
            parse_action({"rate": {"from": "dc-west", "to": "views", "mbit": 1}}, "x", "b"), runtime.topology, "x", "b"
        )
    injector = FaultInjector(runtime, Journal(tmp_path), random.Random(1))
    for action in (loss, rate):
        with pytest.raises(
            UsageError, match=f"the recording runtime cannot do {action.kind} \\(it needs the 'network' capability\\)"
        ):
            injector.apply(action)
    assert injector.active_ids() == []
    injector.close()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"from": "dc-west", "to": "dc-east", "percent": 0}, "field 'b.corruption.percent': .*greater than 0"),
        ({"from": "dc-west", "to": "dc-east", "percent": 100.5}, "field 'b.corruption.percent': .*less than or equal"),
        ({"from": "dc-west", "to": "dc-east", "percent": "lots"}, "field 'b.corruption.percent'"),
        ({"from": "dc-west", "to": "dc-east"}, "field 'b.corruption.percent'"),
        ({"from": "dc-west", "to": "dc-west", "percent": 5}, "field 'b.corruption': 'from' and 'to' are both dc-west"),
        ({"from": "dc-west", "to": "dc-east", "percent": 5, "bits": 2}, "field 'b.corruption.bits'"),
    ],
)
def test_a_bad_corruption_names_the_field(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_action({"corruption": spec}, "x", "b")


def test_corruption_is_a_network_fault_between_two_data_centers_refused_where_the_network_is_not_controlled(tmp_path):
    """Bits flipped in the kernel only (the services never see a packet's bits: no in-app stand-in); a fraction of
    a percent is fine (netem takes one too), and the runtime without network control refuses it naming itself."""
    bad = parse_action({"corruption": {"from": "dc-west", "to": "dc-east", "percent": 0.5}, "for": "5s"}, "x", "b")
    assert bad.to_data() == {"corruption": {"from": "dc-west", "to": "dc-east", "percent": 0.5}, "for": "5s"}
    assert parse_action(bad.to_data(), "x", "b") == bad
    assert KINDS["corruption"].capability == NETWORK and KINDS["corruption"].reversible
    runtime = RecordingRuntime()
    with pytest.raises(ConfigError, match="field 'b.corruption.from': data center 'views': unknown"):
        check_action(
            parse_action({"corruption": {"from": "views", "to": "dc-east", "percent": 1}}, "x", "b"),
            runtime.topology,
            "x",
            "b",
        )
    injector = FaultInjector(runtime, Journal(tmp_path), random.Random(1))
    with pytest.raises(UsageError, match="the recording runtime cannot do corruption \\(it needs the 'network'"):
        injector.apply(bad)
    assert injector.active_ids() == []
    injector.close()
