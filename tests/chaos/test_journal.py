"""The journal: written one event a line, read back by its one reader in time order, a torn last line left out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos.journal import Journal, read_events
from chaos.rundir import JOURNAL
from services.common.errors import ConfigError


def test_what_is_recorded_is_read_back_in_time_order(tmp_path: Path):
    journal = Journal(tmp_path)
    assert journal.read() == []  # nothing recorded yet
    journal.record("start", scenario="dc-power-loss")
    journal.record("power-off", dc="dc-east")
    with (tmp_path / JOURNAL).open("a") as f:  # another thread's event, stamped earlier, written later
        f.write(json.dumps({"t": 1, "event": "phase", "phase": "baseline"}) + "\n")
    events = journal.read()
    assert [e["event"] for e in events] == ["phase", "start", "power-off"]
    assert events[1]["scenario"] == "dc-power-loss" and isinstance(events[0]["t"], float)
    assert read_events(tmp_path / JOURNAL) == events


def test_a_last_line_being_written_is_left_out(tmp_path: Path):
    path = tmp_path / JOURNAL
    path.write_text('{"t": 1, "event": "start"}\n{"t": 2, "event": "pha')
    assert [e["event"] for e in read_events(path)] == ["start"]
    path.write_text('{"t": 1, "event": "start"}\n{"t": 2, "event": "end"}')  # whole, only its newline missing
    assert [e["event"] for e in read_events(path)] == ["start", "end"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"t": 1, "event": "start"}\nnot json\n{"t": 3, "event": "end"}\n', "line 2: not JSON"),
        ("[1, 2]\n", "line 1: not a JSON object"),
        ('{"t": "soon", "event": "start"}\n', "line 1: field 't' must be a number"),
        ('{"t": true, "event": "start"}\n', "line 1: field 't' must be a number"),
        ('{"t": 1}\n', "line 1: field 'event' must be a string"),
    ],
)
def test_a_bad_complete_line_names_the_file_and_line(tmp_path: Path, content: str, reason: str):
    path = tmp_path / JOURNAL
    path.write_text(content)
    with pytest.raises(ConfigError) as err:
        read_events(path)
    assert err.value.source == str(path) and reason in err.value.reason


def test_a_missing_journal_is_an_error_to_a_report(tmp_path: Path):
    with pytest.raises(ConfigError, match="journal.jsonl: not found"):
        read_events(tmp_path / JOURNAL)
