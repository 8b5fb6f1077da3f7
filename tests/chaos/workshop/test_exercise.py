"""Two teams play the same hidden power loss side by side on one machine, each on its own stack (own ports, own
runs folder and .control.json), through the `blackout exercise` commands: red finds it and restores power,
blue does nothing; the timers and the leaderboard tell them apart."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
from fakes.processes import wait_all_gone
from fakes.scenarios import short_power_loss

from chaos.journal import Journal

PROJECT = Path(__file__).resolve().parents[3]


def exercise(*args: str, board: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chaos.cli", "exercise", *args, "--board", str(board)],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        timeout=240,
    )


def poll(check, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while not (result := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.3)
    return result


def _run_ended(control_url: str, headers: dict[str, str]) -> bool:
    return not httpx.get(control_url + "/runs/current", headers=headers).json()["running"]


def users_hurt(team_dir: Path) -> bool:
    """A check during the fault deviated, in the team's scenario run (its journal)."""
    for journal in team_dir.glob("**/journal.jsonl"):
        for line in journal.read_text().splitlines():
            event = json.loads(line) if line.strip() else {}
            if event.get("event") == "hypothesis" and event.get("phase") == "during" and event.get("met") is False:
                return True
    return False


def test_two_teams_play_side_by_side_and_the_one_that_acted_ranks_first(tmp_path):
    scenario = short_power_loss(tmp_path, off_at=3, on_at=14, duration=24, users=4)
    config = tmp_path / "exercise.yaml"
    # hold: the power loss does not heal by itself; only a team that acts gets its users back
    config.write_text(f"scenario: {scenario}\nonset: {{min: 1s, max: 2s}}\nhold: true\nallow: [power-on, profile]\n")
    board = tmp_path / "teams"
    starts = {
        team: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "chaos.cli",
                "exercise",
                "start",
                "--team",
                team,
                "--seed",
                str(seed),
                "--config",
                str(config),
                "--board",
                str(board),
            ],
            cwd=PROJECT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for team, seed in (("red", 1), ("blue", 2))
    }
    controls: dict[str, dict] = {}
    try:
        for team, proc in starts.items():
            out, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, err
            assert "/room?token=" in out and "dc-power-loss" not in out  # the link, not the answer
            controls[team] = json.loads((board / team / ".control.json").read_text())
        auth = {team: {"Authorization": f"Bearer {c['token']}"} for team, c in controls.items()}
        ports = {
            team: {i["port"] for i in httpx.get(c["url"] + "/status", headers=auth[team]).json()["instances"].values()}
            for team, c in controls.items()
        }
        assert not ports["red"] & ports["blue"] and controls["red"]["url"] != controls["blue"]["url"]

        red = controls["red"]
        poll(
            lambda: not httpx.get(red["url"] + "/status", headers=auth["red"]).json()["power"]["dc-east"],
            90,
            "the hidden power loss never came",
        )
        # red acts once its users are hurt (a check deviated), as an on-call engineer would: acting within
        # the first second would leave nothing to mitigate and make the score's assertions a race
        poll(lambda: users_hurt(board / "red"), 60, "red's users were never hurt")
        declared = exercise("detect", "dc-east lost power", "--team", "red", board=board)
        assert declared.returncode == 0, declared.stderr
        refused = exercise("act", "power-off", "dc-west", "--team", "red", board=board)
        assert refused.returncode == 1 and "not allowed" in refused.stderr
        act = exercise("act", "power-on", "dc-east", "--team", "red", board=board)
        assert act.returncode == 0, act.stderr
        for team, c in controls.items():
            poll(functools.partial(_run_ended, c["url"], auth[team]), 120, f"{team}'s run never ended")
        ended = {team: exercise("end", "--down", "--team", team, board=board) for team in controls}
        for result in ended.values():
            assert result.returncode == 0, result.stderr
            assert "A data center loses power" in result.stdout and "post-mortem draft" in result.stdout
    finally:
        for team in controls:
            if (board / team / ".control.json").exists():
                subprocess.run(
                    [sys.executable, "-m", "chaos.cli", "down", "--runs", str(board / team)],
                    cwd=PROJECT,
                    capture_output=True,
                    timeout=60,
                )
    scores = {e["team"]: e for e in json.loads((board / "leaderboard.json").read_text())}
    assert scores["red"]["detect_s"] is not None and scores["blue"]["detect_s"] is None
    assert scores["red"]["users_hurt"] and scores["red"]["requests"] > 0
    assert scores["red"]["mitigate_s"] is not None and scores["red"]["recover_s"] is not None
    assert scores["blue"]["users_hurt"] and scores["blue"]["mitigate_s"] is None  # dc-east stayed dark for blue
    assert scores["blue"]["unserved"] > scores["red"]["unserved"]  # blue's users hung on the dark gateway
    assert [e["team"] for e in json.loads((board / "leaderboard.json").read_text())] == ["red", "blue"]
    draft = next((board / "red" / "exercise").glob("*-red/postmortem-draft.md")).read_text()
    assert 'declared: "dc-east lost power"' in draft and "power-off dc-east" in draft
    pids = [
        p
        for c in controls.values()
        for p in [c["pid"], *(p for e in Journal(Path(c["run_dir"])).read() for p in e.get("pids", {}).values())]
    ]
    assert wait_all_gone(pids, timeout_s=20) == []
