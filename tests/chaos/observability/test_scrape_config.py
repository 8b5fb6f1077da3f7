"""The generated Prometheus configuration: every instance a target, labelled from the topology."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from chaos.observability.scrape_config import recording_rules, service_targets, write_config
from chaos.topology import load_topology
from services.common.errors import ConfigError

PROJECT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("name", ["fragile", "resilient"])
def test_every_instance_is_a_target_labelled_by_service_instance_and_dc(name):
    topology = load_topology(PROJECT / "topologies" / f"{name}.yaml")
    targets = service_targets(topology)
    assert len(targets) == len(topology.instances())
    for entry in targets:
        labels = entry["labels"]
        dc, inst = topology.instances()[labels["instance"]]
        assert labels == {"service": inst.service, "instance": labels["instance"], "dc": dc}
        assert entry["targets"] == [f"127.0.0.1:{inst.port}"]
    if name == "resilient":  # the static file of old missed these two
        assert {"auth-west", "views-west"} <= {t["labels"]["instance"] for t in targets}


def test_written_files_are_valid_for_prometheus(tmp_path):
    topology = load_topology(PROJECT / "topologies" / "resilient.yaml")
    config = write_config(
        topology, tmp_path, {"controller": "http://127.0.0.1:7001/metrics", "locust": "http://127.0.0.1:7002/"}
    )
    parsed = yaml.safe_load(config.read_text())
    jobs = {job["job_name"]: job for job in parsed["scrape_configs"]}
    assert set(jobs) == {"blackout-services", "blackout-users", "controller", "locust"}
    assert jobs["controller"]["static_configs"] == [
        {"targets": ["127.0.0.1:7001"], "labels": {"instance": "controller"}}
    ]
    assert jobs["locust"]["metrics_path"] == "/"
    renames = {
        r["regex"].replace("\\", ""): r["replacement"] for r in jobs["blackout-services"]["metric_relabel_configs"]
    }
    assert renames["http://127.0.0.1:9002"] == "views-west"  # a breaker's target reads as an instance name
    assert len(renames) == 10
    assert len(json.loads((tmp_path / "targets" / "services.json").read_text())) == 10
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed: apt-get install -y --no-install-recommends prometheus")
    checked = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr  # checks the rules file too


def test_every_rule_names_its_level_and_window():
    rules = recording_rules()["groups"][0]["rules"]
    assert len(rules) == 6
    for rule in rules:
        level, metric, operation = rule["record"].split(":")
        assert level and metric.startswith("blackout_") and operation.endswith("10s")
        assert "[10s]" in rule["expr"]


@pytest.mark.parametrize(
    ("name", "url", "reason"),
    [
        ("Locust!", "http://127.0.0.1:1/metrics", "job name must match"),
        ("locust", "127.0.0.1:1/metrics", "is not an http"),
        ("locust", "http://127.0.0.1/metrics", "is not an http"),
    ],
)
def test_a_bad_extra_target_is_refused_with_its_name(tmp_path, name, url, reason):
    topology = load_topology(PROJECT / "topologies" / "fragile.yaml")
    with pytest.raises(ConfigError, match=reason) as err:
        write_config(topology, tmp_path, {name: url})
    assert name in str(err.value)
    assert not (tmp_path / "prometheus.yml").exists()


def test_a_data_center_with_an_address_of_its_own_is_scraped_there():
    topology = load_topology(PROJECT / "topologies" / "fragile.yaml").with_addresses(
        {"dc-east": "10.231.0.10", "dc-west": "10.231.0.11"}
    )
    by_instance = {t["labels"]["instance"]: t["targets"] for t in service_targets(topology)}
    assert by_instance["views-east"] == ["10.231.0.10:8002"]
    assert by_instance["gateway-west"] == ["10.231.0.11:9000"]
