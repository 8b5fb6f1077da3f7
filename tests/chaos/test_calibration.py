"""`blackout calibrate` measures this machine's capacity and saves it; scenarios size their users to it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes.scenarios import variant
from rich.console import Console

from chaos import calibration
from chaos.cli import main
from chaos.engine.run import RunOptions
from chaos.journal import Journal
from chaos.stack import run_scenario
from services.common.errors import UsageError

PROJECT = Path(__file__).resolve().parents[2]


def test_calibrate_saves_the_capacity_with_the_date_the_cpus_and_the_profile(calibrated):
    saved = json.loads((calibrated / calibration.CALIBRATION_FILE).read_text())
    assert saved["profile"] == "naive" and saved["cpus"] >= 1 and saved["date"].endswith("Z")
    offered = [step["offered_per_s"] for step in saved["steps"]]
    assert offered[0] == 10 and offered == sorted(offered) and max(offered) <= 25  # the bounds were kept
    best = max(step["goodput_per_s"] for step in saved["steps"])
    assert saved["capacity_per_s"] == best > 0  # the knee is the best goodput the search saw
    assert saved["login_capacity_per_s"] > 0  # auth's logins/s: what a login storm saturates


def short_relative(tmp_path: Path, fraction: float, of: str = "actions") -> Path:
    """retry-storm, shortened, with its load a fraction of the calibrated capacity (of actions or logins)."""
    return variant(
        tmp_path,
        "retry-storm",
        load={"capacity": fraction, "of": of, "spawn_rate": 20},
        duration="8s",
        hypothesis={"window": "3s", "min_requests": 3, "during": False, "probes": [{"success_rate": {"min": 0.5}}]},
        timeline=[{"at": "3s", "brownout": {"target": "auth-east", "ms": 10}, "for": "1s"}],
    )


@pytest.mark.parametrize(
    ("of", "fraction", "figure"), [("actions", 0.2, "capacity_per_s"), ("logins", 2, "login_capacity_per_s")]
)
def test_a_scenario_sized_to_the_capacity_runs_that_many_users(calibrated, tmp_path, of, fraction, figure):
    scenario = short_relative(tmp_path, fraction, of)
    assert main(["validate", str(scenario)]) == 0
    options = RunOptions(
        scenario=scenario,
        profile=PROJECT / "profiles" / "naive.yaml",
        seed=3,
        runs_root=calibrated,
        any_ports=True,
        observe=False,
    )
    result = run_scenario(options, Console(quiet=True))
    capacity = json.loads((calibrated / calibration.CALIBRATION_FILE).read_text())[figure]
    start = next(e for e in Journal(result.run_dir).read() if e["event"] == "start")
    assert start["users"] == max(1, round(fraction * capacity * 1.0))  # each acts about once a second (0.5-1.5 s)


def test_without_a_calibration_the_run_says_to_calibrate_and_starts_nothing(tmp_path, capsys):
    scenario = short_relative(tmp_path, 0.5)
    runs = tmp_path / "runs"
    assert main(["run", str(scenario), "--runs", str(runs)]) == 2
    assert "run `blackout calibrate` first" in capsys.readouterr().err
    assert not runs.exists() or not any(runs.iterdir())  # refused before any run directory or process


def test_an_unreadable_calibration_is_named_with_what_to_do(tmp_path):
    (tmp_path / calibration.CALIBRATION_FILE).write_text('{"capacity_per_s": -3}')
    with pytest.raises(UsageError, match=r"calibration.json: not a calibration .*run `blackout calibrate` again"):
        calibration.load(tmp_path)


def test_a_calibration_made_before_logins_were_measured_says_to_calibrate_again(tmp_path):
    (tmp_path / calibration.CALIBRATION_FILE).write_text(
        '{"capacity_per_s": 300, "profile": "naive", "cpus": 2, "date": "2026-12-04T00:00:00Z", "machine": "m", '
        '"steps": []}'
    )
    saved = calibration.load(tmp_path)
    assert saved.users_for(0.1, (0.5, 1.5)) == 30  # sizing by actions still works
    with pytest.raises(UsageError, match=r"no login capacity .*run `blackout calibrate` again"):
        saved.users_for(7, (0.5, 1.5), "logins")


def test_calibrate_refuses_bounds_that_cannot_search(tmp_path, capsys):
    assert main(["calibrate", "--runs", str(tmp_path), "--first-rate", "50", "--max-rate", "10"]) == 2
    assert "--max-rate (10) is below --first-rate (50)" in capsys.readouterr().err
