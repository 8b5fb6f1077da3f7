"""The ledger: a write's end overrides its pending row; a write that never ended is of unknown outcome."""

from __future__ import annotations

from chaos.audit.ledger import view_writes
from loadtest.records import WRITE_COLUMNS, CsvRecorder


def test_the_end_of_a_write_overrides_its_pending_row_and_no_end_is_unknown(tmp_path):
    ledger = CsvRecorder(tmp_path / "writes.csv", WRITE_COLUMNS)
    for event_id, outcomes in {"a": ["pending", "failed"], "b": ["pending", "acked"], "c": ["pending"]}.items():
        for outcome in outcomes:
            ledger.write(
                {
                    "event_id": event_id,
                    "user": "u",
                    "dc": "dc-east",
                    "video_id": "video-0001",
                    "t_sent": 1.0,
                    "t_done": "" if outcome == "pending" else 2.0,
                    "outcome": outcome,
                    "status": "",
                }
            )
    ledger.close()
    assert {e: w.outcome for e, w in view_writes(tmp_path).items()} == {"a": "failed", "b": "acked", "c": "unknown"}
