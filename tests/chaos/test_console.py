from __future__ import annotations

import pytest

from chaos.console import PIPED_WIDTH, terminal


def test_piped_output_gets_room_for_the_report_tables(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    console = terminal()  # pytest captures stdout: not a terminal, as `make outage | tee demo.log`
    assert not console.is_terminal and console.width == PIPED_WIDTH


def test_columns_from_the_environment_win(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COLUMNS", "100")
    assert terminal().width == 100
