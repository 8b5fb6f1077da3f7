"""`blackout exercise leaderboard --collect`: the score files of several machines merged by round, a team's
entries resolved as documented (the same play once, different plays: the best, the others named), a table
per round and a running total; a bad file is named with its field, exit 2, nothing written. (The real files of
a real round are collected in test_teams.py; these are written in their format to pin the merge's rules.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chaos.workshop.collect import collect, running_total, write_collected

PROJECT = Path(__file__).resolve().parents[3]


def play(folder: Path, team: str, round_id: str, started: float, points: int, scenario: str = "dc-power-loss") -> Path:
    """A round's score.json where the product writes it: <runs>/<team>/exercise/<time>-<team>/score.json."""
    path = folder / team / "exercise" / f"{started:.0f}-{team}" / "score.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {
        "team": team,
        "round_id": round_id,
        "scenario": scenario,
        "started": started,
        "seed": 42,
        "points": points,
        "detect_s": 12.0,
        "mitigate_s": None,
        "recover_s": None,
        "localization": 1.0,
        "root_cause": True,
        "paged": True,
        "ack_s": 4.0,
        "unserved": 30,
        "expected": 100,
    }
    path.write_text(json.dumps(entry))
    return path


def blackout(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaos.cli", *args], capture_output=True, text=True, cwd=PROJECT, timeout=60
    )


def test_rounds_merge_across_machines_a_copied_play_counts_once_and_a_replayed_one_keeps_the_best(tmp_path):
    a, b = tmp_path / "laptop-a", tmp_path / "laptop-b"
    play(a, "red", "round-1", 1000.0, 700)
    play(b, "blue", "round-1", 1001.0, 800)
    play(a, "red", "round-2", 2000.0, 500)
    play(b, "red", "round-2", 2000.0, 500)  # the same play, copied to both folders
    replay = play(b, "blue", "round-2", 2100.0, 300)  # blue played round 2 twice: on b and on a
    best = play(a, "blue", "round-2", 2050.0, 650)
    collected = collect([a, b])
    assert sorted((e["team"], e["round_id"], e["points"]) for e in collected.entries) == [
        ("blue", "round-1", 800),
        ("blue", "round-2", 650),
        ("red", "round-1", 700),
        ("red", "round-2", 500),
    ]
    assert collected.set_aside == [
        f"blue played round-2 more than once: {replay} (300 points) set aside, {best} (650) counts"
    ]
    assert running_total(collected.entries) == [
        {"team": "blue", "points": 1450, "rounds": 2},
        {"team": "red", "points": 1200, "rounds": 2},
    ]
    text = write_collected(collected, tmp_path / "out").read_text()
    assert text.index("round-1") < text.index("round-2") < text.index("## Running total")
    assert "| 1 | blue | 1450 | 2 |" in text
    board = json.loads((tmp_path / "out" / "leaderboard.json").read_text())
    assert [[e["team"] for e in r["teams"]] for r in board["rounds"]] == [["blue", "red"], ["blue", "red"]]


def test_the_command_prints_the_merged_board_and_what_it_set_aside(tmp_path):
    play(tmp_path / "a", "red", "round-1", 1000.0, 700)
    play(tmp_path / "b", "red", "round-1", 1100.0, 600)
    result = blackout(
        "exercise", "leaderboard", "--collect", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "o")
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("note: red played round-1 more than once")
    assert "## Running total" in result.stdout and (tmp_path / "o" / "leaderboard.md").exists()


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "a score file is a JSON object"),
        (json.dumps({"team": "red"}), "field 'scenario'"),
        (None, "field 'points'"),  # a valid file with points: -5
        (None, "field 'team'"),  # a valid file with team: "Red Team"
    ],
)
def test_a_bad_score_file_is_named_with_its_field_and_nothing_is_written(tmp_path, content, says):
    good = play(tmp_path / "a", "red", "round-1", 1000.0, 700)
    bad = tmp_path / "b" / "blue" / "exercise" / "1-blue" / "score.json"
    bad.parent.mkdir(parents=True)
    if content is None:
        entry = json.loads(good.read_text())
        entry.update({"points": -5} if "points" in says else {"team": "Red Team"})
        content = json.dumps(entry)
    bad.write_text(content)
    result = blackout(
        "exercise", "leaderboard", "--collect", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "o")
    )
    assert result.returncode == 2 and str(bad) in result.stderr and says in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()


def test_a_missing_folder_or_one_without_scores_is_refused(tmp_path):
    missing = blackout("exercise", "leaderboard", "--collect", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "no such folder" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = blackout("exercise", "leaderboard", "--collect", str(tmp_path / "empty"))
    assert empty.returncode == 2 and "no score.json under" in empty.stderr
