"""What the views log's readers ask for (counts, a user's history, what trends), kept up to date as
events are appended, so each read costs O(its result), not O(the log).

The log stays the system of record: append-only and idempotent by ``event_id``. A trigger on every
*inserted* event (an ``INSERT OR IGNORE`` that ignored a duplicate inserts nothing, so fires nothing)
updates, in the same transaction as the insert:

- ``view_counts``: views per video;
- ``user_history``: per (user, video) the seq of the user's last view of it;
- the trending window, the last ``TRENDING_WINDOW`` events: a ring of that many slots (the n-th event
  inserted takes slot n mod W, pushing out the event W inserts older) and ``trending_counts``, views
  per video inside the window. Seqs cannot number the ring: SQLite's AUTOINCREMENT burns a seq on an
  ignored duplicate, so they have gaps; ``aggregate_state.inserted`` counts real inserts instead.

Whatever writes events (a view, a replicated batch, the seed, a bulk load) keeps them exact.
``ensure`` rebuilds them from the log once when they are missing or were built for another window
(a database made before they existed, or one bulk-loaded before the trigger was created).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from services.common.db import Database

TRENDING_WINDOW = 2000  # the most recent events that decide what is trending
VERSION = f"2:{TRENDING_WINDOW}"  # a change of window (or of these tables, or the trigger) rebuilds them

TABLES = """
CREATE TABLE IF NOT EXISTS view_counts (video_id TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS user_history (
    user_id TEXT NOT NULL,
    video_id TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    PRIMARY KEY (user_id, video_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS user_history_recent ON user_history (user_id, last_seq);
CREATE TABLE IF NOT EXISTS trending_ring (slot INTEGER PRIMARY KEY, video_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trending_counts (video_id TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS trending_rank ON trending_counts (n DESC, video_id);
CREATE TABLE IF NOT EXISTS aggregate_state (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    inserted INTEGER NOT NULL,  -- events inserted so far: the next one takes ring slot inserted % window
    version TEXT NOT NULL
);
"""
TRIGGER = f"""
CREATE TRIGGER IF NOT EXISTS events_aggregate AFTER INSERT ON events BEGIN
    INSERT INTO view_counts (video_id, n) VALUES (new.video_id, 1)
        ON CONFLICT (video_id) DO UPDATE SET n = n + 1;
    INSERT INTO user_history (user_id, video_id, last_seq) VALUES (new.user_id, new.video_id, new.seq)
        ON CONFLICT (user_id, video_id) DO UPDATE SET last_seq = excluded.last_seq;
    UPDATE trending_counts SET n = n - 1 WHERE video_id = (
        SELECT video_id FROM trending_ring WHERE slot = (SELECT inserted % {TRENDING_WINDOW} FROM aggregate_state));
    DELETE FROM trending_counts WHERE n <= 0;
    -- an upsert, not INSERT OR REPLACE: a trigger's OR-clause yields to the outer statement's (the appends'
    -- INSERT OR IGNORE), so a full ring kept its old videos and trending drifted after two windows
    INSERT INTO trending_ring (slot, video_id)
        VALUES ((SELECT inserted % {TRENDING_WINDOW} FROM aggregate_state), new.video_id)
        ON CONFLICT (slot) DO UPDATE SET video_id = excluded.video_id;
    INSERT INTO trending_counts (video_id, n) VALUES (new.video_id, 1)
        ON CONFLICT (video_id) DO UPDATE SET n = n + 1;
    UPDATE aggregate_state SET inserted = inserted + 1;
END
"""
SCHEMA = TABLES + TRIGGER + ";\n"


def ensure(db: Database) -> bool:
    """Rebuild the aggregates from the log if they are missing or stale; True when it did."""
    state = db.query("SELECT version FROM aggregate_state")
    if state and state[0]["version"] == VERSION:
        return False
    with db.transaction() as conn:
        conn.execute("DROP TRIGGER IF EXISTS events_aggregate")  # the version's trigger (an older one may be there)
        conn.execute(TRIGGER)
        rebuild(conn)
    return True


def bulk_insert(conn: sqlite3.Connection, sql: str, rows: Iterable[tuple]) -> None:
    """Insert many events at once (a seed, a bulk load), then derive the aggregates once: several
    times faster than the trigger row by row. Inside the caller's transaction (DDL is transactional
    in SQLite: no other writer ever sees the log without its trigger)."""
    conn.execute("DROP TRIGGER IF EXISTS events_aggregate")
    conn.executemany(sql, rows)
    rebuild(conn)
    conn.execute(TRIGGER)


def rebuild(conn: sqlite3.Connection) -> None:
    """Derive every aggregate from the log (O(log); inside the caller's transaction)."""
    for table in ("view_counts", "user_history", "trending_ring", "trending_counts", "aggregate_state"):
        conn.execute(f"DELETE FROM {table}")
    conn.execute("INSERT INTO view_counts SELECT video_id, COUNT(*) FROM events GROUP BY video_id")
    conn.execute("INSERT INTO user_history SELECT user_id, video_id, MAX(seq) FROM events GROUP BY user_id, video_id")
    total = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    recent = conn.execute("SELECT video_id FROM events ORDER BY seq DESC LIMIT ?", (TRENDING_WINDOW,)).fetchall()
    # the k-th newest event is the (total - k)-th inserted (0-based), so it sits in slot (total - k) % W
    conn.executemany(
        "INSERT INTO trending_ring (slot, video_id) VALUES (?, ?)",
        [((total - k) % TRENDING_WINDOW, row[0]) for k, row in enumerate(recent, start=1)],
    )
    conn.execute("INSERT INTO trending_counts SELECT video_id, COUNT(*) FROM trending_ring GROUP BY video_id")
    conn.execute("INSERT INTO aggregate_state (id, inserted, version) VALUES (0, ?, ?)", (total, VERSION))


def counts(db: Database, video_ids: list[str]) -> dict[str, int]:
    marks = ",".join("?" * len(video_ids))
    rows = db.read(f"SELECT video_id, n FROM view_counts WHERE video_id IN ({marks})", video_ids)
    found = {row[0]: row[1] for row in rows}
    return {vid: found.get(vid, 0) for vid in video_ids}


def history(db: Database, user_id: str, limit: int) -> list[str]:
    """The videos ``user_id`` watched, the most recently watched first."""
    rows = db.read(
        "SELECT video_id FROM user_history WHERE user_id = ? ORDER BY last_seq DESC LIMIT ?", (user_id, limit)
    )
    return [row[0] for row in rows]


def trending(db: Database, limit: int) -> list[tuple[str, int]]:
    """The most viewed videos among the last TRENDING_WINDOW events (ties by video_id)."""
    rows = db.read("SELECT video_id, n FROM trending_counts ORDER BY n DESC, video_id LIMIT ?", (limit,))
    return [(row[0], row[1]) for row in rows]
