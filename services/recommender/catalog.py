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
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS videos_by_creator ON videos (creator_id);
"""


@dataclass(frozen=True)
class Entry:
    video_id: str
    title: str
    creator_id: str
    tags: tuple[str, ...]


class Catalog:
    def __init__(self, db: Database, seed: int) -> None:
        self.db = db
        if not db.query("SELECT 1 FROM videos LIMIT 1"):
            with db.transaction() as conn:
                conn.executemany(
                    "INSERT INTO videos VALUES (?, ?, ?, ?, 0)",
                    [(v.video_id, v.title, v.creator_id, json.dumps(v.tags)) for v in catalog(seed)],
                )
        self.entries: dict[str, Entry] = {
            row["video_id"]: Entry(row["video_id"], row["title"], row["creator_id"], tuple(json.loads(row["tags"])))
            for row in db.query("SELECT * FROM videos ORDER BY created_at, video_id")
        }
        self.ordered: list[Entry] = list(self.entries.values())  # the same, by position (for sampling)

    def add(self, title: str, creator_id: str, tags: list[str]) -> Entry:
        entry = Entry(f"up-{uuid.uuid4().hex[:12]}", title, creator_id, tuple(tags))
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO videos VALUES (?, ?, ?, ?, ?)",
                (entry.video_id, title, creator_id, json.dumps(tags), time.time()),
            )
        self.entries[entry.video_id] = entry
        self.ordered.append(entry)
        return entry

    def by_creator(self, creator_id: str) -> list[str]:
        return [e.video_id for e in self.entries.values() if e.creator_id == creator_id]
