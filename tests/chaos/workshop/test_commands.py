"""`blackout exercise` refuses bad input before starting anything, and places each team's stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from chaos.profile_files import PROFILES
from chaos.workshop.commands import team_topology

PROJECT = Path(__file__).resolve().parents[3]


def blackout(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chaos.cli", *args], capture_output=True, text=True, cwd=PROJECT, timeout=60
    )


def test_a_port_block_gives_each_instance_the_next_port_and_any_leaves_it_to_the_runtime():
    block = team_topology(PROFILES / "naive.yaml", 21000)
    ports = [inst.port for _, inst in block.instances().values()]
    assert ports == list(range(21000, 21000 + len(ports)))
    assert {inst.port for _, inst in team_topology(PROFILES / "naive.yaml", "any").instances().values()} == {0}


def test_bad_input_is_refused_with_exit_2_and_no_stack_starts(tmp_path):
    board = tmp_path / "teams"
    for args, says in (
        (["--scenario", "meteor-strike"], "unknown; scenarios:"),
        (["--profile", "reckless"], "no profile 'reckless'"),
        (["--allow", "reboot"], "allow.0"),
        (["--allow", "power-on,panic"], "allow.1"),  # panic is the instructor's, never a team's lever
        (["--onset=-5s"], "MIN-MAX"),
        (["--onset", "9s-2s"], "is before min"),
        (["--round", "0s"], "round"),
        (["--ports", "80"], "first port of a free block"),
        (["--team", "Red Team"], "lowercase"),
    ):
        result = blackout("exercise", "start", *args, "--board", str(board))
        assert result.returncode == 2 and says in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert not board.exists()  # nothing was started, not even a folder
    missing = blackout("exercise", "detect", "failed_requests", "dc-east", "power-loss", "--board", str(board))
    assert missing.returncode == 1 and "no running stack found" in missing.stderr
