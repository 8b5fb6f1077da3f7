"""The leaderboard ranks teams per round (round id and scenario), never across scenarios."""

from __future__ import annotations

import json
from pathlib import Path

from chaos.workshop.draft import SCORE_FILE, write_leaderboard


def played(board: Path, team: str, started: float, round_id: str, scenario: str, points: int) -> None:
    folder = board / team / "exercise" / f"{int(started)}-{team}"
    folder.mkdir(parents=True)
    entry = {
        "team": team,
        "started": started,
        "round_id": round_id,
        "scenario": scenario,
        "points": points,
        "detect_s": 10.0,
        "mitigate_s": 30.0,
        "paged": True,
        "ack_s": 4.0,
        "localization": 1.0,
        "root_cause": True,
        "unserved": 5,
        "expected": 100,
    }
    (folder / SCORE_FILE).write_text(json.dumps(entry))


def test_each_round_and_scenario_is_ranked_on_its_own(tmp_path):
    played(tmp_path, "red", 1, "r1", "brownout", 700)
    played(tmp_path, "blue", 2, "r1", "brownout", 800)
    played(tmp_path, "red", 3, "r2", "partition", 900)  # a better score, another scenario: not red's r1 best
    played(tmp_path, "blue", 4, "r2", "partition", 400)
    played(tmp_path, "blue", 5, "r2", "partition", 600)  # blue played r2 twice: its best counts
    board = write_leaderboard(tmp_path)
    rounds = json.loads((tmp_path / "leaderboard.json").read_text())
    assert [(r["round_id"], r["scenario"]) for r in rounds] == [("r1", "brownout"), ("r2", "partition")]
    assert [(e["team"], e["points"]) for e in rounds[0]["teams"]] == [("blue", 800), ("red", 700)]
    assert [(e["team"], e["points"]) for e in rounds[1]["teams"]] == [("red", 900), ("blue", 600)]
    text = board.read_text()
    assert "## Round r1: brownout" in text and "## Round r2: partition" in text and "| 1 | blue | 800 | 4 s |" in text
