"""earnings: what a creator has earned, computed from the views of that creator's videos."""

from __future__ import annotations

import asyncio
import time

import httpx
from fastapi import APIRouter, FastAPI, Request
from starlette.concurrency import run_in_threadpool

from services.common.app import ServiceContext, build_context, create_service_app
from services.common.db import Database
from services.common.errors import DependencyError
from services.common.ids import PathId
from services.common.metrics import FALLBACKS
from services.common.settings import ServiceSettings
from services.earnings.api import EARNINGS
from services.recommender.api import CREATOR_VIDEOS
from services.views.api import COUNTS, COUNTS_BATCH

CENTS_PER_1000_VIEWS = 400
SCHEMA = """
CREATE TABLE IF NOT EXISTS statements (
    creator_id TEXT PRIMARY KEY,
    views INTEGER NOT NULL,
    earnings_cents INTEGER NOT NULL,
    computed_at REAL NOT NULL
);
"""

router = APIRouter(tags=["earnings"])


@router.get(EARNINGS)
async def earnings(creator_id: PathId, request: Request) -> dict:
    """Computed fresh from the views log; the last statement is kept to show, marked stale, when that fails."""
    ctx: ServiceContext = request.app.state.ctx
    db: Database = request.app.state.db
    try:
        owned = await ctx.deps["recommender"].get_json(CREATOR_VIDEOS.format(creator_id=creator_id))
        video_ids: list[str] = owned["video_ids"]
        batches = [video_ids[i : i + COUNTS_BATCH] for i in range(0, len(video_ids), COUNTS_BATCH)]
        answers = await asyncio.gather(*(ctx.deps["views"].post_json(COUNTS, {"video_ids": b}) for b in batches))
    except DependencyError:
        if ctx.profiles.current.fallbacks.earnings != "stale":
            raise
        rows = await run_in_threadpool(db.query, "SELECT * FROM statements WHERE creator_id = ?", (creator_id,))
        if not rows:
            raise
        FALLBACKS.labels("earnings_stale").inc()
        return {**dict(rows[0]), "status": "stale"}
    views = sum(sum(a["counts"].values()) for a in answers)
    statement = {
        "creator_id": creator_id,
        "views": views,
        "earnings_cents": views * CENTS_PER_1000_VIEWS // 1000,
        "computed_at": time.time(),
    }
    await run_in_threadpool(_save, db, statement)
    return {**statement, "status": "ok"}


def _save(db: Database, statement: dict) -> None:
    with db.transaction() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO statements VALUES (:creator_id, :views, :earnings_cents, :computed_at)", statement
        )


def create_app(settings: ServiceSettings, transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    ctx = build_context(settings, transport)
    db = Database(settings.data_dir / f"{settings.instance}.sqlite3", SCHEMA)
    ctx.closers.append(db.close)
    app = create_service_app(ctx, router)
    app.state.db = db
    return app
