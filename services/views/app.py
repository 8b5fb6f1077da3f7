"""views: the system of record for views, an append-only event log; every count is derived from it."""
from __future__ import annotations

import time

import httpx
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from pydantic import BaseModel, Field

from services.common.app import build_context, create_service_app
from services.common.db import Database
from services.common.ids import Id, PathId
from services.common.seed import seed_view_events
from services.common.settings import ServiceSettings

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    video_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    t REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_video ON events (video_id);
CREATE INDEX IF NOT EXISTS events_by_user ON events (user_id, seq);
"""
TRENDING_WINDOW = 2000  # the most recent events that decide what is trending


class ViewEvent(BaseModel):
    event_id: Id
    video_id: Id
    user_id: Id


class Recorded(BaseModel):
    event_id: str
    video_id: str
    counted: bool = Field(description="false when this event_id was already recorded (an idempotent retry)")


class CountsRequest(BaseModel):
    video_ids: list[Id] = Field(min_length=1, max_length=200)


class ViewLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def seed(self, seed: int) -> None:
        if self.db.query("SELECT 1 FROM events LIMIT 1"):
            return
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT INTO events (event_id, video_id, user_id, t) VALUES (?, ?, ?, ?)", seed_view_events(seed)
            )

    def append(self, event: ViewEvent) -> bool:
        with self.db.transaction() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO events (event_id, video_id, user_id, t) VALUES (?, ?, ?, ?)",
                (event.event_id, event.video_id, event.user_id, time.time()),
            )
            return cur.rowcount == 1

    def counts(self, video_ids: list[str]) -> dict[str, int]:
        marks = ",".join("?" * len(video_ids))
        rows = self.db.query(
            f"SELECT video_id, COUNT(*) AS n FROM events WHERE video_id IN ({marks}) GROUP BY video_id", video_ids
        )
        found = {row["video_id"]: row["n"] for row in rows}
        return {vid: found.get(vid, 0) for vid in video_ids}

    def history(self, user_id: str, limit: int) -> list[str]:
        rows = self.db.query(
            "SELECT video_id, MAX(seq) AS last FROM events WHERE user_id = ? GROUP BY video_id ORDER BY last DESC LIMIT ?",
            (user_id, limit),
        )
        return [row["video_id"] for row in rows]

    def trending(self, limit: int) -> list[tuple[str, int]]:
        rows = self.db.query(
            "SELECT video_id, COUNT(*) AS n FROM (SELECT video_id FROM events ORDER BY seq DESC LIMIT ?) "
            "GROUP BY video_id ORDER BY n DESC, video_id LIMIT ?",
            (TRENDING_WINDOW, limit),
        )
        return [(row["video_id"], row["n"]) for row in rows]


router = APIRouter(tags=["views"])


def log(request: Request) -> ViewLog:
    return request.app.state.log


@router.post("/views", response_model=Recorded)
def record_view(event: ViewEvent, views: ViewLog = Depends(log)) -> Recorded:
    return Recorded(event_id=event.event_id, video_id=event.video_id, counted=views.append(event))


@router.get("/videos/{video_id}/views")
def video_views(video_id: PathId, views: ViewLog = Depends(log)) -> dict:
    return {"video_id": video_id, "views": views.counts([video_id])[video_id]}


@router.post("/views/counts")
def batch_counts(body: CountsRequest, views: ViewLog = Depends(log)) -> dict:
    return {"counts": views.counts(body.video_ids)}


@router.get("/users/{user_id}/history")
def user_history(user_id: PathId, limit: int = Query(50, ge=1, le=500), views: ViewLog = Depends(log)) -> dict:
    return {"user_id": user_id, "video_ids": views.history(user_id, limit)}


@router.get("/trending")
def trending(limit: int = Query(20, ge=1, le=200), views: ViewLog = Depends(log)) -> dict:
    return {"videos": [{"video_id": vid, "views": n} for vid, n in views.trending(limit)]}


def create_app(settings: ServiceSettings, transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    ctx = build_context(settings, transport)
    db = Database(settings.data_dir / f"{settings.instance}.sqlite3", SCHEMA)
    view_log = ViewLog(db)
    view_log.seed(settings.seed)
    ctx.closers.append(db.close)
    app = create_service_app(ctx, router)
    app.state.log = view_log
    return app
