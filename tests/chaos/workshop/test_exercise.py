"""Two teams play the same hidden power loss side by side on one machine, each on its own stack (own ports, own
runs folder and .control.json), through the `blackout exercise` commands: red finds it and restores power,
blue does nothing; the timers and the leaderboard tell them apart."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fakes.processes import wait_all_gone
from fakes.scenarios import short_power_loss
from fakes.two_teams import (
    PROJECT,
    TEAMS,
    dark,
    down_all,
    exercise,
    held_round,
    poll,
    red_declares,
    red_powers_on,
    team_control,
    team_stack_pids,
)


def users_recovered(team_dir: Path, since: float) -> bool:
    """A check after ``since`` held again, in the team's scenario run (its journal)."""
    for journal in team_dir.glob("**/journal.jsonl"):
        for line in journal.read_text().splitlines():
            event = json.loads(line) if line.strip() else {}
            if event.get("event") == "hypothesis" and event.get("met") is True and event.get("t", 0) > since:
                return True
    return False


def users_hurt(team_dir: Path) -> bool:
    """A check during the fault deviated, in the team's scenario run (its journal)."""
    for journal in team_dir.glob("**/journal.jsonl"):
        for line in journal.read_text().splitlines():
            event = json.loads(line) if line.strip() else {}
            if event.get("event") == "hypothesis" and event.get("phase") == "during" and event.get("met") is False:
                return True
    return False


def test_two_teams_play_side_by_side_and_the_one_that_acted_ranks_first(tmp_path):
    config = held_round(tmp_path, round_s=600)
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
        for team, seed in zip(TEAMS, (1, 2), strict=True)
    }
    controls: dict[str, dict] = {}
    try:
        for team, proc in starts.items():
            out, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, err
            assert "/room?token=" in out and "dc-power-loss" not in out  # the link, not the answer
            controls[team] = team_control(board, team)
        auth = {team: {"Authorization": f"Bearer {c['token']}"} for team, c in controls.items()}
        ports = {
            team: {i["port"] for i in httpx.get(c["url"] + "/status", headers=auth[team]).json()["instances"].values()}
            for team, c in controls.items()
        }
        assert not ports["red"] & ports["blue"] and controls["red"]["url"] != controls["blue"]["url"]

        poll(lambda: dark(controls["red"]), 90, "the hidden power loss never came")
        # red acts once its users are hurt (a check deviated), as an on-call engineer would: acting within
        # the first second would leave nothing to mitigate and make the score's assertions a race
        poll(lambda: users_hurt(board / "red"), 60, "red's users were never hurt")
        declared = red_declares(board)
        assert declared.returncode == 0, declared.stderr
        refused = exercise("act", "power-off", "dc-west", "--team", "red", board=board)
        assert refused.returncode == 1 and "not allowed" in refused.stderr
        acted_at = time.time()
        act = red_powers_on(board)
        assert act.returncode == 0, act.stderr
        # the round lasts 10 minutes (a short one ended before a slow machine let red act, and the run's own
        # rollback had restored power: "dc-east is already powered on"); it ends once red's users are back
        poll(lambda: users_recovered(board / "red", acted_at), 120, "red's users never recovered")
        ended = {team: exercise("end", "--down", "--team", team, board=board) for team in controls}
        for result in ended.values():
            assert result.returncode == 0, result.stderr
            assert "A data center loses power" in result.stdout and "post-mortem draft" in result.stdout
    finally:
        down_all(board)
    (ranked,) = json.loads((board / "leaderboard.json").read_text())  # one round: both teams, one scenario
    scores = {e["team"]: e for e in ranked["teams"]}
    assert scores["red"]["detect_s"] is not None and scores["blue"]["detect_s"] is None
    assert scores["red"]["users_hurt"] and scores["red"]["requests"] > 0
    assert scores["red"]["mitigate_s"] is not None and scores["red"]["recover_s"] is not None
    # blue's users were hurt; whether a check held before its round ended depends on the machine (its dc-west half
    # served, its run's own end restoring power): its ranking and its unserved requests tell it from red
    assert scores["blue"]["users_hurt"]
    assert scores["blue"]["unserved"] > scores["red"]["unserved"]  # blue's users hung on the dark gateway
    assert [e["team"] for e in ranked["teams"]] == ["red", "blue"]
    assert scores["red"]["localization"] == 1.0 and scores["red"]["root_cause"]
    draft = next((board / "red" / "exercise").glob("*-red/postmortem-draft.md")).read_text()
    assert 'declared: failed_requests at dc-east, power-loss ("dc-east lost power")' in draft
    assert "power-off dc-east" in draft
    assert wait_all_gone(team_stack_pids(controls.values()), timeout_s=20) == []


def first_event(team_dir: Path, name: str) -> float | None:
    """When the first ``name`` event was journaled, in any journal of the team's stack (its own, its runs')."""
    times = [
        event["t"]
        for journal in team_dir.glob("**/journal.jsonl")
        for line in journal.read_text().splitlines()
        if line.strip() and (event := json.loads(line)).get("event") == name
    ]
    return min(times, default=None)


def exercise_view(url: str, auth: dict) -> dict:
    return httpx.get(url + "/exercise", headers=auth, timeout=10).json()


@pytest.mark.long  # minutes of real rounds: `make test-long` (CI runs it), not the 15-minute suite
def test_a_real_round_pages_the_room_and_scores_the_ack(tmp_path):
    """A held power loss on a real stack under load: the pager reads what users recorded, pages once their
    error budget burns, the team acknowledges from the CLI, declares, takes a hint, restores power; the end
    scores the ack it measured."""
    scenario = short_power_loss(tmp_path, off_at=24, on_at=50, duration=60, users=6)
    config = tmp_path / "exercise.yaml"
    # hold, and users for 150 s: dc-east stays dark until the team restores it, however slow the machine
    config.write_text(f"scenario: {scenario}\nonset: {{min: 1s, max: 1s}}\nhold: true\nround: 150s\nround_id: r1\n")
    board = tmp_path / "teams"
    started = exercise("start", "--team", "red", "--seed", "5", "--config", str(config), board=board)
    assert started.returncode == 0, started.stderr
    control = team_control(board, "red")
    url, auth = control["url"], {"Authorization": f"Bearer {control['token']}"}
    try:
        early = exercise("ack", "--team", "red", board=board)
        assert early.returncode != 0 and "the pager has not paged" in early.stderr  # nothing burns yet
        power_off_at = poll(lambda: first_event(board / "red", "power-off"), 120, "the hidden power loss never came")
        page = poll(lambda: exercise_view(url, auth)["page"], 90, "the pager never paged")
        assert page["t"] >= power_off_at and page["burn_short"] >= 14.4 and page["burn_long"] >= 14.4
        print(f"paged {page['t'] - power_off_at:.1f} s after the power-off")  # the report quotes it
        assert "gateway" in page["runbooks"] and "14.4x" in page["text"]
        acked = exercise("ack", "--team", "red", board=board)
        assert acked.returncode == 0 and "acknowledged" in acked.stdout, acked.stderr
        hint = exercise("hint", "--team", "red", board=board)
        assert hint.returncode == 0 and "hint 1 (-25 points" in hint.stdout, hint.stderr
        declared = exercise("detect", "zero_view_displays", "dc-east", "power-loss", "--team", "red", board=board)
        assert declared.returncode == 0, declared.stderr
        assert red_powers_on(board).returncode == 0
        acked_page = exercise_view(url, auth)["page"]
        ack_s = round(acked_page["acked_at"] - acked_page["t"], 1)
        ended = exercise("end", "--down", "--team", "red", board=board)
        assert ended.returncode == 0, ended.stderr
    finally:
        down_all(board)
    (ranked,) = json.loads((board / "leaderboard.json").read_text())
    assert ranked["round_id"] == "r1"
    s = ranked["teams"][0]
    assert s["paged"] and s["ack_s"] == ack_s and s["parts"]["acknowledge"] == max(0, round(100 - 2 * ack_s))
    assert s["hints"] == 1 and s["penalties"]["hints"] == 25
    assert s["localization"] == 1.0 and s["root_cause"] and s["detect_s"] is not None
    draft = Path(s["draft"]).read_text()
    assert "acknowledged the page after" in draft and "paged: SLO burn" in draft and "took hint 1" in draft
    assert wait_all_gone([control["pid"]], timeout_s=20) == []
