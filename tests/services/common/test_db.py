"""The services' SQLite store: a transaction whose COMMIT fails is rolled back, and the store goes on."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from services.common.db import Database

# A deferred foreign key is checked at COMMIT: a real, deterministic way for a COMMIT to fail.
SCHEMA = """
CREATE TABLE IF NOT EXISTS parent (id INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS child (
    id INTEGER PRIMARY KEY,
    parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED
);
"""


def test_a_failed_commit_is_rolled_back_and_later_writes_succeed(tmp_path: Path):
    db = Database(tmp_path / "store.sqlite3", SCHEMA)
    try:
        db.query("PRAGMA foreign_keys=ON")
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            with db.transaction() as conn:
                conn.execute("INSERT INTO child (id, parent) VALUES (1, 42)")  # no parent 42: COMMIT refuses
        with db.transaction() as conn:  # a transaction left open would make this BEGIN fail
            conn.execute("INSERT INTO parent (id) VALUES (7)")
            conn.execute("INSERT INTO child (id, parent) VALUES (2, 7)")
        assert [tuple(r) for r in db.query("SELECT id, parent FROM child")] == [(2, 7)]  # the failed write is gone
        assert [tuple(r) for r in db.read("SELECT id FROM parent")] == [(7,)]  # committed: other readers see it
    finally:
        db.close()


def _writes() -> tuple[float, float, float]:
    """(write transactions, of them within 0.5 s, seconds in all) so far, from the process's registry."""
    value = REGISTRY.get_sample_value
    return (
        value("blackout_db_write_duration_seconds_count") or 0.0,
        value("blackout_db_write_duration_seconds_bucket", {"le": "0.5"}) or 0.0,
        value("blackout_db_write_duration_seconds_sum") or 0.0,
    )


def test_every_write_records_how_long_it_took_from_asking_for_the_writer_to_its_commit(tmp_path: Path, monkeypatch):
    # A storage stall (a commit whose fsync hangs) holds the writer: what is measured starts when a write asks
    # for it, so the writes queued behind the stall record their wait too. The clock is scripted (asked at 10 s,
    # committed at 10.7 s), a stall being what this machine cannot be made to do on demand.
    db = Database(tmp_path / "store.sqlite3", SCHEMA)
    try:
        clock = iter([10.0, 10.7, 20.0, 20.001])
        monkeypatch.setattr("services.common.db.perf_counter", lambda: next(clock))
        count, fast, seconds = _writes()
        with db.transaction() as conn:
            conn.execute("INSERT INTO parent (id) VALUES (1)")
        with pytest.raises(sqlite3.IntegrityError):  # a failed write is a write that took its time too
            with db.transaction() as conn:
                conn.execute("INSERT INTO parent (id) VALUES (1)")
        after = _writes()
        assert after[0] == count + 2
        assert after[1] == fast + 1  # the 0.7-s one is past the 0.5-s bucket, the 1-ms one within it
        assert after[2] == pytest.approx(seconds + 0.701)
    finally:
        db.close()
