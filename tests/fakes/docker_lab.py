"""A Docker engine and the Blackout image for the Docker runtime's tests, or a loud reason to skip them."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
IMAGE = "blackout:latest"
BUILD_TIMEOUT_S = 900


def engine_or_skip():
    """The Docker SDK client, or a skip saying loudly that the Docker runtime went untested."""
    try:
        import docker

        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as exc:  # no SDK, no socket, no daemon: every one means "not tested here"
        pytest.skip(
            f"NO DOCKER ENGINE ({type(exc).__name__}: {str(exc)[:160]}): the Docker runtime was NOT tested; "
            "start one with `bash /work/shared/docker-lab/setup.sh` (see README, Docker)"
        )
    return client


def build_image() -> float:
    """Build the image from this tree (the layer cache makes a rebuild after a code edit a few seconds)."""
    docker = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else shutil.which("docker") or "docker"
    started = time.monotonic()
    done = subprocess.run(
        [docker, "build", "--network", "host", "-q", "-t", IMAGE, str(PROJECT)],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    assert done.returncode == 0, f"docker build failed:\n{done.stderr[-3000:]}"
    return time.monotonic() - started


def run_containers(client, run_id: str) -> list:
    return client.containers.list(all=True, filters={"label": f"blackout.run={run_id}"})
