"""The aggregates the views reads are served from always equal what the log itself says."""

from __future__ import annotations

import random
import sqlite3
from collections import Counter
from pathlib import Path

from services.common.db import Database
from services.views import aggregates
from services.views.api import ReplicatedEvent, ViewEvent
from services.views.app import LOG_SCHEMA, SCHEMA, ViewLog


def from_the_log(db: Database, user_id: str) -> tuple[dict[str, int], list[str], list[tuple[str, int]]]:
    """counts, history and trending computed the slow way, straight from the events."""
    counts = {r[0]: r[1] for r in db.query("SELECT video_id, COUNT(*) FROM events GROUP BY video_id")}
    history = [
        r[0]
        for r in db.query(
            "SELECT video_id, MAX(seq) AS last FROM events WHERE user_id = ? GROUP BY video_id ORDER BY last DESC",
            (user_id,),
        )
    ]
    recent = Counter(
        r[0] for r in db.query("SELECT video_id FROM events ORDER BY seq DESC LIMIT ?", (aggregates.TRENDING_WINDOW,))
    )
    trending = sorted(recent.items(), key=lambda kv: (-kv[1], kv[0]))
    return counts, history, trending


def served(log: ViewLog, videos: list[str], user_id: str) -> tuple[dict[str, int], list[str], list[tuple[str, int]]]:
    counts = {v: n for v, n in log.counts(videos).items() if n}
    return counts, log.history(user_id, 500), log.trending(500)


def test_views_retries_and_replicated_batches_keep_every_aggregate_exact(tmp_path: Path):
    log = ViewLog(Database(tmp_path / "views.sqlite3", SCHEMA))
    rng = random.Random(7)
    videos = [f"video-{i:04d}" for i in range(60)]
    for _ in range(5000):  # more than two trending windows, with duplicates that must count once
        key = rng.randrange(4000)
        if rng.random() < 0.8:  # a retry repeats its event: same key, same video (another video would be a 409)
            log.append(ViewEvent(event_id=f"e{key}", video_id=videos[key % 60], user_id=rng.choice(["u1", "u2", "u3"])))
        else:
            batch = [
                ReplicatedEvent(event_id=f"p{rng.randrange(800)}", video_id=rng.choice(videos), user_id="u1", t=1.0)
                for _ in range(rng.randrange(1, 6))
            ]
            log.apply(batch, "peer:other")
    assert served(log, videos, "u1") == from_the_log(log.db, "u1")
    assert served(log, videos, "u2") == from_the_log(log.db, "u2")


def test_a_log_loaded_without_aggregates_gets_them_built_once(tmp_path: Path):
    path = tmp_path / "views.sqlite3"
    bare = Database(path, LOG_SCHEMA)  # e.g. a database from before the aggregates, or a bulk load
    with bare.transaction() as conn:
        conn.executemany(
            "INSERT INTO events (event_id, video_id, user_id, t, origin) VALUES (?, ?, ?, 0, 'seed')",
            [
                (
                    f"b{n}",
                    f"video-{n % 37:04d}",
                    f"u{n % 3}",
                )
                for n in range(4321)
            ],
        )
    bare.close()
    db = Database(path, SCHEMA)
    assert aggregates.ensure(db) is True
    assert aggregates.ensure(db) is False  # built for this window: nothing to do
    log = ViewLog(db)
    log.append(ViewEvent(event_id="after", video_id="video-0001", user_id="u1"))  # the ring goes on where it was
    videos = [f"video-{n:04d}" for n in range(37)]
    assert served(log, videos, "u1") == from_the_log(db, "u1")


def test_aggregates_built_for_another_window_are_rebuilt(tmp_path: Path):
    db = Database(tmp_path / "views.sqlite3", SCHEMA)
    ViewLog(db)
    with db.transaction() as conn:
        conn.execute("UPDATE aggregate_state SET version = 'old'")
    assert aggregates.ensure(db) is True


def test_reads_see_writes_at_once_and_the_reader_cannot_write(tmp_path: Path):
    log = ViewLog(Database(tmp_path / "views.sqlite3", SCHEMA))
    log.append(ViewEvent(event_id="x", video_id="video-0001", user_id="u9"))
    assert log.counts(["video-0001"]) == {"video-0001": 1} and log.history("u9", 5) == ["video-0001"]
    try:
        log.db.read("DELETE FROM events")
    except sqlite3.OperationalError as exc:
        assert "readonly" in str(exc)
    else:
        raise AssertionError("the reader connection wrote")


def test_the_seeded_log_is_bulk_inserted_with_exact_aggregates_and_the_trigger_back(tmp_path: Path):
    log = ViewLog(Database(tmp_path / "views.sqlite3", SCHEMA))
    log.seed(42)
    videos = [r[0] for r in log.db.query("SELECT DISTINCT video_id FROM events")]
    assert served(log, videos, "viewer-0002") == from_the_log(log.db, "viewer-0002")
    log.append(ViewEvent(event_id="after-seed", video_id="video-0001", user_id="viewer-0002"))
    assert served(log, videos, "viewer-0002") == from_the_log(log.db, "viewer-0002")
