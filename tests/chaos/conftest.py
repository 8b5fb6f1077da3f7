"""Real outage runs shared by the end-to-end tests (each takes ~35 s, so each runs once per session)."""
from __future__ import annotations

from pathlib import Path

import pytest
from fakes.ports import free_port
from rich.console import Console

from chaos.outage import OutageOptions, run_outage

PROJECT = Path(__file__).resolve().parents[2]


def _run(profile: str, runs_root: Path) -> Path:
    options = OutageOptions(
        profile=PROJECT / "profiles" / f"{profile}.yaml", baseline_s=6, outage_s=10, recovery_s=8, users=10,
        runs_root=runs_root, port_allocator=free_port,
    )  # fmt: skip
    return run_outage(options, Console(record=True, width=120))


@pytest.fixture(scope="session")
def naive_run(tmp_path_factory) -> Path:
    return _run("naive", tmp_path_factory.mktemp("naive-runs"))


@pytest.fixture(scope="session")
def resilient_run(tmp_path_factory) -> Path:
    return _run("resilient", tmp_path_factory.mktemp("resilient-runs"))
