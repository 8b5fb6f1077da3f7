"""Real scenario runs shared by the end-to-end tests (each takes ~40 s, so each runs once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes.scenarios import short_power_loss
from rich.console import Console

from chaos.engine.run import RunOptions, RunResult
from chaos.stack import run_scenario

PROJECT = Path(__file__).resolve().parents[2]


def _run(profile: str, root: Path) -> RunResult:
    options = RunOptions(
        scenario=short_power_loss(root),
        profile=PROJECT / "profiles" / f"{profile}.yaml",
        seed=7,
        runs_root=root / "runs",
        any_ports=True,
    )
    return run_scenario(options, Console(record=True, width=120))


@pytest.fixture(scope="session")
def naive_result(tmp_path_factory) -> RunResult:
    return _run("naive", tmp_path_factory.mktemp("naive"))


@pytest.fixture(scope="session")
def resilient_result(tmp_path_factory) -> RunResult:
    return _run("resilient", tmp_path_factory.mktemp("resilient"))


@pytest.fixture(scope="session")
def naive_run(naive_result) -> Path:
    return naive_result.run_dir


@pytest.fixture(scope="session")
def resilient_run(resilient_result) -> Path:
    return resilient_result.run_dir


@pytest.fixture(scope="session")
def calibrated(tmp_path_factory) -> Path:
    """A runs folder holding a real, short calibration made through the command line (small steps, a low
    ceiling): what `blackout calibrate` leaves for scenarios sized to the capacity."""
    from chaos.cli import main

    runs = tmp_path_factory.mktemp("calibrated") / "runs"
    code = main(["calibrate", "--runs", str(runs), "--step-seconds", "1", "--first-rate", "10", "--max-rate", "25"])
    assert code == 0
    return runs
