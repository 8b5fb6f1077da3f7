"""`blackout search` refuses bad options with one line and exit 2, before starting anything."""

from __future__ import annotations

import pytest

from chaos.cli import main


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["--max-faults", "4"], "--max-faults: give 1 to 3"),
        (["--budget", "soon"], "--budget"),
        (["--profile", "no-such-profile"], "no such profile"),
    ],
)
def test_bad_options_are_refused_with_a_reason(argv, reason, capsys, tmp_path):
    assert main(["search", *argv, "--runs", str(tmp_path)]) == 2
    assert reason in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing written
