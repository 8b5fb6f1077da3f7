"""The metastability map: a real sweep's cell is classified recovered or stuck from its own checks."""

from __future__ import annotations

import csv
from pathlib import Path

from fakes.scenarios import variant

from chaos import calibration
from chaos.cli import main
from chaos.engine.scenario import load_scenario
from chaos.journal import Journal
from chaos.metastability import RECOVERED, STUCK, classify, draw, sweep_profile, write_csv

PROJECT = Path(__file__).resolve().parents[2]


def test_a_real_cell_is_classified_from_its_checks_after_the_trigger(calibrated, tmp_path):
    scenario = load_scenario(
        variant(
            tmp_path,
            "retry-storm",
            load={"capacity": 0.1, "spawn_rate": 20},
            hypothesis={"window": "3s", "min_requests": 3, "during": False, "probes": [{"success_rate": {"min": 0.5}}]},
        )
    )
    cells = sweep_profile(
        PROJECT / "profiles" / "naive.yaml",
        scenario,
        calibration.load(calibrated),
        [2.0],
        [0.1],
        1,
        tmp_path / "sweep",
        observe_s=12.0,
        say=lambda line: None,
    )
    [cell] = cells
    # a 2-s stall of auth at a tenth of the capacity: the stack comes back, and says how fast
    assert cell.verdict == RECOVERED and cell.recovered_after_s is not None and 0 < cell.recovered_after_s <= 12
    [record] = [e for e in Journal(tmp_path / "sweep" / "naive").read() if e["event"] == "cell"]
    checks = [(c["t"], c["steady_state_met"]) for c in record["checks"]]
    assert classify(checks, record["removed_at"], 12.0) == (RECOVERED, cell.recovered_after_s)
    # the same real checks, judged with a deadline before the first that held: stuck
    assert classify(checks, record["removed_at"], cell.recovered_after_s - 0.5) == (STUCK, None)
    write_csv(cells, tmp_path / "map.csv")
    draw(cells, tmp_path / "map.png", "test")
    with (tmp_path / "map.csv").open() as rows:
        assert [(r["profile"], r["verdict"], r["trigger_s"]) for r in csv.DictReader(rows)] == [
            ("naive", "recovered", "2.0")
        ]
    assert (tmp_path / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_map_without_a_calibration_says_to_calibrate(tmp_path, capsys):
    assert main(["metastability", "--runs", str(tmp_path)]) == 2
    assert "run `blackout calibrate` first" in capsys.readouterr().err
