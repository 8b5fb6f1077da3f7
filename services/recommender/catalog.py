"""The video catalog the recommender owns: SQLite on disk, mirrored in memory for ranking."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

from services.common.db import Database
from services.common.seed import catalog

SCHEMA = """
CREATE TABLE IF NOT EXISTS videos (
    video_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    creator_id TEXT NOT NULL,
    tags TEXT NOT NULL,
    created_at REAL NOT NULL,
    origin TEXT NOT NULL DEFAULT 'seed',  -- 'seed', 'local' (uploaded here) or 'peer:<instance>' (replicated)
    stored_t REAL  -- when it reached this catalog (NULL for the seed)
);
CREATE INDEX IF NOT EXISTS videos_by_creator ON videos (creator_id);
-- per replication peer (its URL): the rowid of the last local upload it acknowledged
CREATE TABLE IF NOT EXISTS replication_cursors (peer TEXT PRIMARY KEY, seq INTEGER NOT NULL);
"""
COLUMNS = "video_id, title, creator_id, tags, created_at, origin, stored_t"


@dataclass(frozen=True)
class Entry:
    video_id: str
    title: str
    creator_id: str
    tags: tuple[str, ...]


class Catalog:
    def __init__(self, db: Database, seed: int) -> None:
        self.db = db
        have = {row["name"] for row in db.query("PRAGMA table_info(videos)")}
        if "origin" not in have:  # a catalog made before replication
            with db.transaction() as conn:
                conn.execute("ALTER TABLE videos ADD COLUMN origin TEXT NOT NULL DEFAULT 'seed'")
                conn.execute("ALTER TABLE videos ADD COLUMN stored_t REAL")
        if not db.query("SELECT 1 FROM videos LIMIT 1"):
            with db.transaction() as conn:
                conn.executemany(
                    "INSERT INTO videos (video_id, title, creator_id, tags, created_at) VALUES (?, ?, ?, ?, 0)",
                    [(v.video_id, v.title, v.creator_id, json.dumps(v.tags)) for v in catalog(seed)],
                )
        self.entries: dict[str, Entry] = {
            row["video_id"]: Entry(row["video_id"], row["title"], row["creator_id"], tuple(json.loads(row["tags"])))
            for row in db.query("SELECT * FROM videos ORDER BY created_at, video_id")
        }
        self.ordered: list[Entry] = list(self.entries.values())  # the same, by position (for sampling)

    def add(self, title: str, creator_id: str, tags: list[str]) -> Entry:
        """An upload; returns once it is committed (on disk): only then may it be acknowledged."""
        entry = Entry(f"up-{uuid.uuid4().hex[:12]}", title, creator_id, tuple(tags))
        now = time.time()
        with self.db.transaction() as conn:
            conn.execute(
                f"INSERT INTO videos ({COLUMNS}) VALUES (?, ?, ?, ?, ?, 'local', ?)",
                (entry.video_id, title, creator_id, json.dumps(tags), now, now),
            )
        self.remember(entry)
        return entry

    def remember(self, entry: Entry) -> None:
        self.entries[entry.video_id] = entry
        self.ordered.append(entry)

    def forget(self, video_ids: set[str]) -> None:
        for vid in video_ids:
            self.entries.pop(vid, None)
        self.ordered = [e for e in self.ordered if e.video_id not in video_ids]

    def by_creator(self, creator_id: str) -> list[str]:
        return [e.video_id for e in self.entries.values() if e.creator_id == creator_id]
