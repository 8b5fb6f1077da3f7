"""`blackout kube`: every manifest valid against the Kubernetes schemas (offline, kubernetes-validate), one zone
per data center, and pods whose environment the services themselves accept."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from chaos.cli import main
from chaos.engine.fit import topology_for
from chaos.profile_files import profile_file
from chaos.runtime.kube import CREDENTIALS, LABEL_DC, ZONE_LABEL, memory_quantity
from chaos.topology import Topology, load_topology
from services.common.policy import load_profile
from services.common.settings import load_settings

KUBERNETES_VERSION = "1.30"  # a version clusters run today; the package ships the schemas of every release


def topology_of(profile: str) -> Topology:
    """The topology the profile names: what `blackout kube --profile P` generates for."""
    return load_topology(topology_for(load_profile(profile_file(profile))))


def generate(tmp_path: Path, *extra: str) -> dict[str, list[dict]]:
    """Run the command as a user would; relative path -> the documents it wrote."""
    assert main(["kube", "--out", str(tmp_path), *extra]) == 0
    return {
        str(path.relative_to(tmp_path)): [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        for path in sorted(tmp_path.rglob("*.yaml"))
    }


def by_kind(files: dict[str, list[dict]], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for docs in files.values() for d in docs if d["kind"] == kind}


@pytest.mark.parametrize("profile", ["naive", "resilient"])
def test_every_manifest_is_valid_against_the_kubernetes_schemas(tmp_path, profile):
    files = generate(tmp_path, "--profile", profile)
    checked = 0
    for docs in files.values():
        for doc in docs:
            # strict: an unknown or misspelt field (a typo Kubernetes would silently drop) fails too
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            checked += 1
    kinds = {d["kind"] for docs in files.values() for d in docs}
    assert {"Namespace", "Secret", "ConfigMap", "Deployment", "Service", "PersistentVolumeClaim"} <= kinds
    assert "NetworkPolicy" in kinds
    assert checked > 3 * len(topology_of(profile).instances())


def test_the_schema_check_catches_a_broken_manifest(tmp_path):
    """The validation above can fail: a Deployment with a misspelt field and one with a wrong type are refused."""
    deployment = by_kind(generate(tmp_path), "Deployment")["gateway-east"]
    misspelt = json.loads(json.dumps(deployment))
    misspelt["spec"]["replica"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt, KUBERNETES_VERSION, strict=True)
    wrong_type = json.loads(json.dumps(deployment))
    wrong_type["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong_type, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("profile", ["naive", "resilient"])
def test_one_deployment_per_instance_pinned_to_its_data_centers_zone(tmp_path, profile):
    files = generate(tmp_path, "--profile", profile)
    topology = topology_of(profile)
    deployments = by_kind(files, "Deployment")
    services = by_kind(files, "Service")
    assert set(deployments) - {"prometheus"} == set(topology.instances())
    for name, (dc, inst) in topology.instances().items():
        spec = deployments[name]["spec"]
        assert spec["replicas"] == 1
        terms = spec["template"]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert terms["nodeSelectorTerms"] == [
            {"matchExpressions": [{"key": ZONE_LABEL, "operator": "In", "values": [dc]}]}
        ]
        assert spec["template"]["metadata"]["labels"][LABEL_DC] == dc
        assert services[name]["spec"]["ports"][0]["port"] == inst.port
        assert services[name]["spec"]["selector"].items() <= spec["template"]["metadata"]["labels"].items()
    # Prometheus is pinned to no zone: it must see either data center go dark
    assert "affinity" not in deployments["prometheus"]["spec"]["template"]["spec"]


def test_zones_can_be_named_and_the_blackhole_selects_one_data_center(tmp_path):
    files = generate(tmp_path, "--zone", "dc-east=us-east-1a", "--zone", "dc-west=us-west-2b")
    east = by_kind(files, "Deployment")["views-east"]["spec"]["template"]["spec"]
    west = by_kind(files, "Deployment")["gateway-west"]["spec"]["template"]["spec"]
    zone_of = lambda pod: pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][  # noqa: E731
        "nodeSelectorTerms"
    ][0]["matchExpressions"][0]["values"]
    assert zone_of(east) == ["us-east-1a"] and zone_of(west) == ["us-west-2b"]
    policy = files["faults/power-off-dc-east.yaml"][0]
    assert policy["spec"] == {
        "podSelector": {"matchLabels": {LABEL_DC: "dc-east"}},
        "policyTypes": ["Ingress", "Egress"],
    }


def test_every_pods_environment_is_accepted_by_the_service_itself(tmp_path, monkeypatch):
    """The services' own settings loader takes each container's env (the Secret's values filled in): every
    dependency has an address (the peers' Service names), the three credentials differ, the token secret goes
    only where tokens are signed or checked."""
    files = generate(tmp_path, "--profile", "resilient")
    secret = by_kind(files, "Secret")["blackout-secrets"]["stringData"]
    assert set(secret) == set(CREDENTIALS) and len(set(secret.values())) == 3
    for name, deployment in by_kind(files, "Deployment").items():
        if name == "prometheus":
            continue
        env = {}
        for var in deployment["spec"]["template"]["spec"]["containers"][0]["env"]:
            ref = var.get("valueFrom", {}).get("secretKeyRef")
            env[var["name"]] = secret[ref["key"]] if ref else var["value"]
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        settings = load_settings()
        assert settings.instance == name and settings.host == "0.0.0.0"
        for targets in settings.dependencies.values():
            assert all(url.startswith("http://") and ".blackout.svc:" in url for url in targets)
        assert ("BLACKOUT_TOKEN_SECRET" in env) == (settings.service in ("auth", "gateway"))
        for key in env:
            monkeypatch.delenv(key)


def test_secrets_are_fresh_on_every_call_and_readable_by_the_owner_only(tmp_path):
    first = by_kind(generate(tmp_path / "a"), "Secret")["blackout-secrets"]["stringData"]
    second = by_kind(generate(tmp_path / "b"), "Secret")["blackout-secrets"]["stringData"]
    assert not set(first.values()) & set(second.values())
    assert stat.S_IMODE((tmp_path / "a" / "01-secret.yaml").stat().st_mode) == 0o600


def test_prometheus_scrapes_every_instance_at_its_service_name(tmp_path):
    files = generate(tmp_path, "--profile", "resilient", "--namespace", "chaos-lab")
    config = by_kind(files, "ConfigMap")["prometheus"]["data"]
    targets = json.loads(config["services.json"])
    topology = topology_of("resilient")
    found = {t["labels"]["instance"]: (t["targets"], t["labels"]["dc"]) for t in targets}
    assert found == {n: ([f"{n}.chaos-lab.svc:{i.port}"], dc) for n, (dc, i) in topology.instances().items()}
    prometheus = yaml.safe_load(config["prometheus.yml"])
    relabel = prometheus["scrape_configs"][0]["metric_relabel_configs"]
    # the URLs the services call (their peers' Service names), not 127.0.0.1
    calls = {r["replacement"]: r["regex"] for r in relabel}
    assert set(calls) == set(topology.instances())
    for name, (_, inst) in topology.instances().items():
        assert re.fullmatch(calls[name], f"http://{name}.chaos-lab.svc:{inst.port}")


def test_memory_limits_keep_their_size():
    assert memory_quantity("256m") == "256Mi" and memory_quantity("1g") == "1Gi"


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--zone", "dc-east"], "DC=ZONE"),
        (["--zone", "dc-north=z1"], "no data center 'dc-north'"),
        (["--namespace", "Bad_Name"], "--namespace"),
        (["--profile", "nosuch"], "no such profile"),
    ],
)
def test_bad_options_are_refused_with_a_reason(tmp_path, capsys, args, reason):
    assert main(["kube", "--out", str(tmp_path), *args]) == 2
    assert reason in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing half-written
