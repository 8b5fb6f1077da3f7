"""A scenario fits a topology: every data center, service and instance its steps and probes name exists; a
mistake is refused naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chaos.engine.fit import TOPOLOGIES, topologies_for, validate
from chaos.engine.run import RunOptions
from chaos.engine.scenario import parse_scenario
from chaos.stack import run_scenario
from chaos.topology import load_topology
from services.common.errors import ConfigError

FRAGILE = load_topology(TOPOLOGIES / "fragile.yaml")


def scenario(timeline: list[dict], probes: list[dict] | None = None, **extra: object) -> dict:
    return {
        "title": "t",
        "description": "d",
        "learn": "l",
        "load": {"users": 2},
        "duration": "60s",
        "hypothesis": {"probes": probes or [{"success_rate": {"min": 0.5}}]},
        "timeline": timeline,
        **extra,
    }


def refusal(data: dict, topology=FRAGILE) -> str:
    with pytest.raises(ConfigError) as err:
        validate(parse_scenario(data, "my.yaml", "my"), topology, "my.yaml")
    return str(err.value)


@pytest.mark.parametrize(
    ("timeline", "field", "name"),
    [
        ([{"at": "5s", "power_off": "dc-nowhere"}], "timeline.0.power_off", "dc-nowhere"),
        ([{"at": "5s", "power_on": {"dc": "dc-nowhere"}}], "timeline.0.power_on.dc", "dc-nowhere"),
        (
            [{"at": "5s", "flap": {"dc": "dc-nowehre", "times": 1, "off_for": "1s", "on_for": "1s"}}],
            "timeline.0.flap.dc",
            "dc-nowehre",
        ),
        (
            [{"at": "5s", "kill_instance": "views-east"}, {"at": "9s", "kill_instance": "gateway-mars"}],
            "timeline.1.kill_instance",
            "gateway-mars",
        ),
        (
            [{"at": "5s", "latency": {"from": "dc-west", "to": "payments", "ms": 10}}],
            "timeline.0.latency.to",
            "payments",
        ),
        ([{"at": "5s", "partition": ["dc-east", "dc-mars"]}], "timeline.0.partition.1", "dc-mars"),
        ([{"at": "5s", "brownout": {"target": "auth-west", "ms": 10}}], "timeline.0.brownout.target", "auth-west"),
    ],
)
def test_a_step_naming_what_the_topology_lacks_is_refused_naming_the_file_and_field(timeline, field, name):
    message = refusal(scenario(timeline))
    assert message.startswith("my.yaml: ") and f"field '{field}'" in message and f"'{name}'" in message
    assert "topology fragile" in message


def test_a_data_center_step_names_a_data_center_not_a_service():
    message = refusal(scenario([{"at": "5s", "power_off": "views"}]))  # a service: power goes to data centers
    assert "field 'timeline.0.power_off'" in message and "known data centers: dc-east, dc-west" in message


def test_a_probe_on_an_unknown_data_center_is_refused_not_left_without_data():
    probes = [{"success_rate": {"min": 0.5}}, {"p99": {"dc": "dc-eats", "max_ms": 500}}]
    message = refusal(scenario([{"at": "5s", "power_off": "dc-east"}], probes))
    assert message.startswith("my.yaml: ") and "field 'hypothesis.probes.1.p99.dc'" in message
    assert "'dc-eats'" in message and "dc-east, dc-west" in message


def test_what_the_topology_has_passes_and_random_is_the_seeds_choice():
    ok = scenario(
        [
            {"at": "5s", "power_off": "random"},
            {"at": "6s", "kill_instance": "recommender"},
            {"at": "7s", "errors": {"from": "gateway-west", "to": "views-east", "rate": 0.5}},
            {"at": "8s", "power_on": "dc-east"},
        ],
        [{"success_rate": {"dc": "dc-west", "min": 0.5}}],
    )
    validate(parse_scenario(ok, "ok.yaml"), FRAGILE, "ok.yaml")


def test_a_step_can_fit_one_topology_and_not_the_other():
    data = scenario([{"at": "5s", "kill_instance": "auth-west"}])  # auth has a replica in dc-west only there
    validate(parse_scenario(data, "my.yaml"), load_topology(TOPOLOGIES / "resilient.yaml"), "my.yaml")
    assert "field 'timeline.0.kill_instance'" in refusal(data, FRAGILE)


def test_a_scenario_meets_the_topologies_of_the_profiles_it_lists_else_every_one():
    listed = parse_scenario(scenario([{"at": "5s", "power_off": "dc-east"}], profiles={"naive": "deviates"}), "s")
    assert topologies_for(listed, "s") == [TOPOLOGIES / "fragile.yaml"]
    unlisted = parse_scenario(scenario([{"at": "5s", "power_off": "dc-east"}]), "s")
    assert (
        topologies_for(unlisted, "s") == sorted(TOPOLOGIES.glob("*.yaml")) and len(topologies_for(unlisted, "s")) >= 2
    )
    unknown = parse_scenario(scenario([{"at": "5s", "power_off": "dc-east"}], profiles={"reckless": "?"}), "s.yaml")
    with pytest.raises(ConfigError, match=r"s.yaml: field 'profiles.reckless': reckless: no such profile"):
        topologies_for(unknown, "s.yaml")


def test_every_scenario_of_the_library_fits_the_topologies_it_is_written_for():
    for path in sorted(Path(TOPOLOGIES.parent / "chaos" / "scenarios").glob("*.yaml")):
        parsed = parse_scenario(yaml.safe_load(path.read_text()), str(path), path.stem)
        for topology in topologies_for(parsed, str(path)):
            validate(parsed, load_topology(topology), str(path))


def test_a_run_refuses_a_scenario_that_does_not_fit_before_starting_anything(tmp_path):
    bad = tmp_path / "typo.yaml"
    bad.write_text(yaml.safe_dump(scenario([{"at": "5s", "power_off": "dc-nowhere"}])))
    with pytest.raises(ConfigError, match=rf"^{bad}: field 'timeline.0.power_off': data center 'dc-nowhere'"):
        run_scenario(RunOptions(scenario=bad, runs_root=tmp_path / "runs"))
    assert not (tmp_path / "runs").exists()  # no run directory, no stack
