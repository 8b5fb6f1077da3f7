"""docker-compose.yml is generated from the topology; the committed one must be what `blackout compose` writes."""

from __future__ import annotations

import argparse
import shutil
import subprocess

import pytest

from chaos.runtime.compose import DEFAULT_TOPOLOGY, PROJECT_ROOT, cmd_compose, compose_document, generated_files
from chaos.topology import load_topology
from services.common.errors import UsageError


def test_the_committed_files_are_what_the_topology_generates():
    for path, text in generated_files(load_topology(DEFAULT_TOPOLOGY), "topologies/fragile.yaml").items():
        committed = PROJECT_ROOT / path
        assert committed.exists(), f"{path} is missing: run `blackout compose`"
        assert committed.read_text() == text, f"{path} differs from the topology: run `blackout compose` and commit"


def test_check_fails_naming_the_stale_file(tmp_path):
    args = argparse.Namespace(topology=DEFAULT_TOPOLOGY, output=tmp_path, check=False)
    assert cmd_compose(args) == 0
    assert cmd_compose(argparse.Namespace(**{**vars(args), "check": True})) == 0
    (tmp_path / "docker-compose.yml").write_text("version: '2.4'\n")
    with pytest.raises(UsageError, match="docker-compose.yml"):
        cmd_compose(argparse.Namespace(**{**vars(args), "check": True}))


def test_every_instance_is_a_labelled_host_network_container_on_its_local_port():
    topology = load_topology(PROJECT_ROOT / "topologies" / "resilient.yaml")
    services = compose_document(topology)["services"]
    for name, (dc, inst) in topology.instances().items():
        spec = services[name]
        assert spec["labels"]["blackout.dc"] == dc
        assert spec["network_mode"] == "host" and spec["restart"] == "no" and spec["mem_limit"]
        assert spec["environment"]["BLACKOUT_PORT"] == str(inst.port)
        assert spec["healthcheck"]["test"][0] == "CMD"
    assert {"prometheus", "grafana", "locust"} <= set(services)
    assert all(s["network_mode"] == "host" for s in services.values())


@pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="docker-compose is not installed: the file's syntax was not checked"
)
def test_docker_compose_accepts_the_file():
    env = {
        "BLACKOUT_TOKEN_SECRET": "a",
        "BLACKOUT_ADMIN_SECRET": "b",
        "BLACKOUT_SERVICE_KEY": "c",
        "PATH": "/usr/bin:/bin:/usr/local/bin",
    }
    done = subprocess.run(
        ["docker-compose", "-f", str(PROJECT_ROOT / "docker-compose.yml"), "config", "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    missing = subprocess.run(
        ["docker-compose", "-f", str(PROJECT_ROOT / "docker-compose.yml"), "config", "-q"],
        env={"PATH": env["PATH"]},
        capture_output=True,
        text=True,
        timeout=60,
    )
    secrets = ("BLACKOUT_TOKEN_SECRET", "BLACKOUT_ADMIN_SECRET", "BLACKOUT_SERVICE_KEY")
    assert missing.returncode != 0 and any(name in missing.stderr for name in secrets)


def test_the_runtime_option_picks_the_docker_runtime_without_needing_an_engine(tmp_path):
    from chaos.journal import Journal
    from chaos.runtime.choice import make_runtime
    from chaos.runtime.docker import DockerRuntime

    topology = load_topology(DEFAULT_TOPOLOGY)
    runtime = make_runtime("docker", topology, tmp_path, None, Journal(tmp_path))
    assert isinstance(runtime, DockerRuntime) and runtime.name == "docker"
    assert runtime.powered() == {dc: False for dc in topology.data_centers}  # nothing runs before up


def test_the_compose_prometheus_accepts_its_generated_config():
    from fakes.docker_lab import engine_or_skip

    client = engine_or_skip()
    try:
        client.images.get("prom/prometheus:v2.42.0")
    except Exception:
        pytest.skip(
            "NO prom/prometheus:v2.42.0 IMAGE (the docker lab's setup builds it): Compose's Prometheus config was NOT checked"
        )
    output = client.containers.run(
        "prom/prometheus:v2.42.0",
        ["check", "config", "/etc/prometheus/prometheus.yml"],
        entrypoint="promtool",
        network_mode="host",
        remove=True,
        labels={"blackout.role": "test"},
        volumes={str(PROJECT_ROOT / "docker" / "prometheus"): {"bind": "/etc/prometheus", "mode": "ro"}},
    ).decode()
    assert "SUCCESS" in output and "rules found" in output
