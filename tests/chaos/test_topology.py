from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from chaos.topology import check, load_topology, parse_topology
from services.common.errors import ConfigError

PROJECT = Path(__file__).resolve().parents[2]
FRAGILE = PROJECT / "topologies" / "fragile.yaml"


@pytest.fixture
def data() -> dict:
    return yaml.safe_load(FRAGILE.read_text())


def test_the_fragile_topology_keeps_the_systems_of_record_in_dc_east():
    topology = load_topology(FRAGILE)
    services_by_dc = {
        dc: {inst.service for inst in center.instances.values()} for dc, center in topology.data_centers.items()
    }
    assert {"auth", "views"} <= services_by_dc["dc-east"]
    assert not {"auth", "views"} & services_by_dc["dc-west"]
    west = topology.dependency_urls("gateway-west")
    assert west["views"] == [topology.url("views-east")] and west["auth"] == [topology.url("auth-east")]
    assert set(topology.gateways()) == {"dc-east", "dc-west"}


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["data_centers"]["dc-east"]["instances"]["auth-east"].update(service="billing"),
            "field 'data_centers.dc-east.instances.auth-east.service'",
        ),
        (
            lambda d: d["data_centers"]["dc-west"]["instances"]["gateway-west"].update(port=8001),
            "field 'data_centers.dc-west.instances.gateway-west.port': port 8001 is also used by auth-east",
        ),
        (
            lambda d: d["data_centers"]["dc-west"]["instances"]["recommender-west"]["depends_on"].update(
                views=["views-nowhere"]
            ),
            "no instance named 'views-nowhere'",
        ),
        (
            lambda d: d["data_centers"]["dc-west"]["instances"]["recommender-west"]["depends_on"].update(views=[]),
            "depends on nothing",
        ),
        (
            lambda d: d["data_centers"]["dc-west"]["instances"]["recommender-west"]["depends_on"].update(
                views=["auth-east"]
            ),
            "'auth-east' is a auth, not a views",
        ),
        (
            lambda d: d["data_centers"]["dc-west"]["instances"]["recommender-west"].pop("depends_on"),
            "a recommender needs 'views'",
        ),
        (
            lambda d: d["data_centers"]["dc-west"]["instances"]["gateway-west"].update(colour="red"),
            "field 'data_centers.dc-west.instances.gateway-west.colour'",
        ),
    ],
)
def test_a_malformed_topology_is_refused_naming_the_field(data, mutate, expected):
    bad = copy.deepcopy(data)
    mutate(bad)
    with pytest.raises(ConfigError) as err:
        parse_topology(bad, "bad.yaml")
    assert str(err.value).startswith("bad.yaml: ")
    assert expected in str(err.value)


def test_an_unknown_data_center_lists_the_known_ones():
    with pytest.raises(ConfigError, match="known data centers: dc-east, dc-west"):
        load_topology(FRAGILE).require_dc("dc-north")


def test_with_ports_moves_every_instance_and_its_dependencies():
    ports = iter(range(20000, 20100))
    moved = load_topology(FRAGILE).with_ports(lambda name: next(ports))
    assert sorted(inst.port for _, inst in moved.instances().values()) == list(range(20000, 20008))
    assert moved.dependency_urls("gateway-west")["views"] == [moved.url("views-east")]


def test_cli_validate_exits_2_naming_the_file_and_field(tmp_path, data):
    data["data_centers"]["dc-west"]["instances"]["gateway-west"]["port"] = 8002
    bad = tmp_path / "broken.yaml"
    bad.write_text(yaml.safe_dump(data))
    result = subprocess.run([sys.executable, "-m", "chaos.cli", "validate", str(bad)], capture_output=True, text=True)
    assert result.returncode == 2
    assert "broken.yaml" in result.stderr and "gateway-west.port" in result.stderr
    assert "Traceback" not in result.stderr
    ok = subprocess.run([sys.executable, "-m", "chaos.cli", "validate", str(FRAGILE)], capture_output=True, text=True)
    assert ok.returncode == 0 and "valid topology" in ok.stdout


def test_cli_refuses_a_missing_file_and_bad_yaml_clearly(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("data_centers: [unclosed")
    for path, reason in ((tmp_path / "missing.yaml", "cannot read"), (broken, "not valid YAML")):
        result = subprocess.run(
            [sys.executable, "-m", "chaos.cli", "validate", str(path)], capture_output=True, text=True
        )
        assert result.returncode == 2 and reason in result.stderr and "Traceback" not in result.stderr


def test_port_zero_means_any_and_is_not_a_clash():
    anywhere = load_topology(FRAGILE).with_any_ports()
    assert {inst.port for _, inst in anywhere.instances().values()} == {0}
    check(anywhere, "any-ports")  # eight instances on port 0 do not clash


def test_find_names_a_data_center_a_service_or_an_instance():
    topology = load_topology(FRAGILE)
    assert set(topology.find("dc-east")) == set(topology.data_centers["dc-east"].instances)
    assert topology.find("views-east") == ["views-east"]
    assert {topology.instances()[n][1].service for n in topology.find("gateway")} == {"gateway"}
    with pytest.raises(ConfigError, match="data centers: dc-east, dc-west.*instances: .*views-east"):
        topology.find("dc-north")


def test_a_data_center_given_an_address_is_called_there_by_everyone():
    """The netns runtime gives each data center an address of its own: URLs, dependencies and gateways follow it,
    and a later copy (ports bound) keeps it."""
    topology = load_topology(FRAGILE)
    assert topology.url("views-east") == "http://127.0.0.1:8002"
    placed = topology.with_addresses({"dc-east": "10.231.0.10", "dc-west": "10.231.0.11"}).with_ports(lambda n: 7000)
    assert placed.url("views-east") == "http://10.231.0.10:7000"
    assert placed.dependency_urls("gateway-west")["auth"] == ["http://10.231.0.10:7000"]
    assert placed.gateways() == {"dc-east": "http://10.231.0.10:7000", "dc-west": "http://10.231.0.11:7000"}
    assert topology.url("views-east") == "http://127.0.0.1:8002"  # the original is untouched
