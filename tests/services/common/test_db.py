"""The services' SQLite store: a transaction whose COMMIT fails is rolled back, and the store goes on."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

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
