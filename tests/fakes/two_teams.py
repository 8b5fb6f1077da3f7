"""Two teams, red and blue, on one machine playing the same held power loss, each on its own stack under one
board (tests/chaos/workshop/test_exercise.py through `blackout exercise`, test_teams.py through `blackout
workshop`): the round they play, their stacks' processes, red's moves, and stopping what is left."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from fakes.scenarios import short_power_loss

from chaos.journal import Journal

PROJECT = Path(__file__).resolve().parents[2]
TEAMS = ("red", "blue")
T = TypeVar("T")


def poll(check: Callable[[], T], timeout_s: float, what: str) -> T:
    """``check``'s first truthy answer, polled until the deadline (then the test fails saying ``what``)."""
    deadline = time.monotonic() + timeout_s
    while not (result := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.3)
    return result


def blackout(*args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaos.cli", *args], capture_output=True, text=True, cwd=PROJECT, timeout=timeout_s
    )


def exercise(*args: str, board: Path) -> subprocess.CompletedProcess[str]:
    return blackout("exercise", *args, "--board", str(board), timeout_s=240)


def held_round(tmp_path: Path, round_s: int) -> Path:
    """The round's config: the power loss held (it lasts until a team acts: only a team that acts gets its users
    back), users for ``round_s`` (on a busy machine each CLI call takes seconds, and red must act while its
    round still runs; the test ends it long before), power-on and profile allowed."""
    scenario = short_power_loss(tmp_path, off_at=3, on_at=14, duration=24, users=4)
    config = tmp_path / "round.yaml"
    config.write_text(
        f"scenario: {scenario}\nonset: {{min: 1s, max: 2s}}\nhold: true\nround: {round_s}s\n"
        "allow: [power-on, profile]\n"
    )
    return config


def team_control(board: Path, team: str) -> dict[str, Any]:
    return json.loads((board / team / ".control.json").read_text())


def team_stack_pids(controls: Iterable[dict[str, Any]]) -> list[int]:
    """Every process of the stacks of these control files (read while the stacks were up: `down` removes them):
    the supervisors and the instances their journals started."""
    return [
        p
        for c in controls
        for p in [c["pid"], *(p for e in Journal(Path(c["run_dir"])).read() for p in e.get("pids", {}).values())]
    ]


def dark(team: dict[str, Any]) -> bool:
    """Whether dc-east is off on this team's stack (its control file's ``url`` and token)."""
    auth = {"Authorization": f"Bearer {team['token']}"}
    return not httpx.get(team["url"] + "/status", headers=auth, timeout=60).json()["power"]["dc-east"]


def red_declares(board: Path) -> subprocess.CompletedProcess[str]:
    """Red's diagnosis, right in every part: users fail, at dc-east, a power loss."""
    return exercise(
        "detect", "failed_requests", "dc-east", "power-loss", "dc-east lost power", "--team", "red", board=board
    )


def red_powers_on(board: Path) -> subprocess.CompletedProcess[str]:
    return exercise("act", "power-on", "dc-east", "--team", "red", board=board)


def down_all(board: Path) -> None:
    """Stop every team's stack still up (its control file still there): a test's cleanup, whatever failed."""
    for team in TEAMS:
        if (board / team / ".control.json").exists():
            blackout("down", "--runs", str(board / team))
