"""The catalog's replication: uploads are shipped between data centers by the views log's rules.

A recommender whose topology gives it a ``recommender`` dependency treats those instances as its
peers. Local uploads (origin 'local') are shipped in rowid order past each peer's durable cursor
(services/common/replication.py; the profile's ``replication`` picks async or converge); received
uploads are inserted by video_id, ignoring duplicates, and join the in-memory catalog at once.
"""

from __future__ import annotations

import json
import time

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from services.common.api import KNOWN, REPLICATION_STATUS
from services.common.ids import Id
from services.common.perimeter import INTERNAL
from services.common.replication import BATCH, KnownRequest, read_cursor, write_cursor, write_rollback
from services.recommender.api import REPLICATION_VIDEOS
from services.recommender.catalog import COLUMNS, Catalog, Entry


class ReplicatedUpload(BaseModel):
    video_id: Id
    title: str = Field(min_length=1, max_length=120)
    creator_id: Id
    tags: list[Id] = Field(default=[], max_length=5)
    created_at: float = Field(ge=0, allow_inf_nan=False, description="when it was uploaded at its origin")


class UploadBatch(BaseModel):
    events: list[ReplicatedUpload] = Field(max_length=BATCH)
    source: Id | None = Field(None, description="the sending instance (recorded as the uploads' origin)")


class CatalogReplica:
    """The catalog seen as a replicated log (what services.common.replication.Shipper ships)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.db = catalog.db

    def apply(self, uploads: list[ReplicatedUpload], origin: str) -> int:
        now = time.time()
        new: list[Entry] = []
        with self.db.transaction() as conn:
            for u in uploads:
                cur = conn.execute(
                    f"INSERT OR IGNORE INTO videos ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (u.video_id, u.title, u.creator_id, json.dumps(u.tags), u.created_at, origin, now),
                )
                if cur.rowcount == 1:
                    new.append(Entry(u.video_id, u.title, u.creator_id, tuple(u.tags)))
        for entry in new:  # after the commit: never serve what may still roll back
            self.catalog.remember(entry)
        return len(new)

    def cursor(self, peer: str) -> int:
        return read_cursor(self.db, peer)

    def set_cursor(self, peer: str, seq: int) -> None:
        write_cursor(self.db, peer, seq)

    def unshipped(self, peer: str, limit: int) -> tuple[list[tuple[int, dict]], int]:
        # rowids only grow here: a rewind deletes, and the cursor keeps pointing past what it deleted
        after = self.cursor(peer)
        rows = self.db.query(
            "SELECT rowid, video_id, title, creator_id, tags, created_at FROM videos "
            "WHERE origin = 'local' AND rowid > ? ORDER BY rowid LIMIT ?",
            (after, limit),
        )
        waiting = self.db.query("SELECT COUNT(*) AS n FROM videos WHERE origin = 'local' AND rowid > ?", (after,))
        batch = [
            (
                row["rowid"],
                {
                    "video_id": row["video_id"],
                    "title": row["title"],
                    "creator_id": row["creator_id"],
                    "tags": json.loads(row["tags"]),
                    "created_at": row["created_at"],
                },
            )
            for row in rows
        ]
        return batch, waiting[0]["n"]

    def tail(self, peer: str) -> list[str]:
        rows = self.db.query(
            "SELECT video_id FROM videos WHERE origin = 'local' AND rowid > ? ORDER BY rowid", (self.cursor(peer),)
        )
        return [row["video_id"] for row in rows]

    def known(self, ids: list[str]) -> list[str]:
        return [vid for vid in ids if vid in self.catalog.entries]

    def discard(self, ids: list[str], reason: str) -> int:
        marks = ",".join("?" * len(ids))
        rows = self.db.query(
            f"SELECT video_id, title, creator_id, created_at FROM videos WHERE video_id IN ({marks})", ids
        )
        write_rollback(
            self.db.path.with_suffix(".rollback.jsonl"), [{"kind": "upload", **dict(r)} for r in rows], reason
        )
        with self.db.transaction() as conn:
            gone = conn.execute(f"DELETE FROM videos WHERE origin = 'local' AND video_id IN ({marks})", ids).rowcount
        self.catalog.forget(set(ids))
        return gone


router = APIRouter(tags=["replication"])


@router.post(REPLICATION_VIDEOS, dependencies=INTERNAL)
def receive_uploads(body: UploadBatch, request: Request) -> dict:
    """Uploads shipped by a peer; idempotent (by video_id), so a batch may be resent."""
    origin = f"peer:{body.source}" if body.source else "peer"
    return {"applied": request.app.state.replica.apply(body.events, origin)}


@router.post(REPLICATION_VIDEOS + KNOWN, dependencies=INTERNAL)
def known_uploads(body: KnownRequest, request: Request) -> dict:
    return {"known": request.app.state.replica.known(body.ids)}


@router.get(REPLICATION_STATUS)
def replication_status(request: Request) -> dict:
    shipper = request.app.state.shipper
    return {"peers": shipper.waiting() if shipper else {}, "rewound": shipper.rewound if shipper else {}}
