"""recommender: owns the video catalog and builds each user's feed from their history and what trends."""

from __future__ import annotations

import asyncio
import random
from collections import OrderedDict

import httpx
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response

from services.common.app import ServiceContext, build_context, create_service_app
from services.common.db import Database
from services.common.errors import DependencyError
from services.common.hot_routes import install as install_hot_routes
from services.common.ids import PathId
from services.common.metrics import FALLBACKS
from services.common.perimeter import INTERNAL, forwarded_user
from services.common.responses import json_response
from services.common.seed import generic_items
from services.common.settings import ServiceSettings
from services.recommender import api, hot, ranking, replica
from services.recommender.api import Upload
from services.recommender.catalog import SCHEMA, Catalog
from services.views.api import TRENDING, history_path

CACHED_USERS = 10_000
RNG = random.Random()  # one for the process: seeding a fresh one per feed (from os.urandom) costs more than it gives


class Memory:
    """Last good answers, for the fallback ladder: per-user feeds and the trending list."""

    def __init__(self) -> None:
        self.feeds: OrderedDict[str, list[dict]] = OrderedDict()
        self.trending: list[str] = []

    def remember_feed(self, user_id: str, items: list[dict]) -> None:
        self.feeds[user_id] = items
        self.feeds.move_to_end(user_id)
        if len(self.feeds) > CACHED_USERS:
            self.feeds.popitem(last=False)


router = APIRouter(tags=["recommender"])


# The feed's route first: FastAPI tries a router's routes in order, several us each.
@router.get(api.RECOMMENDATIONS)
async def recommendations(
    user_id: PathId, request: Request, limit: int = Query(api.FEED_LIMIT, ge=1, le=api.FEED_MAX)
) -> Response:
    ctx: ServiceContext = request.app.state.ctx
    catalog: Catalog = request.app.state.catalog
    memory: Memory = request.app.state.memory
    rng = RNG
    views = ctx.deps["views"]
    history: object
    trending: object  # an answer, or the DependencyError that took its place
    history, trending = await asyncio.gather(
        views.get_json(history_path(user_id), params={"limit": 30}),
        views.get_json(TRENDING, params={"limit": 40}),
        return_exceptions=True,
    )
    for failure in (history, trending):
        if isinstance(failure, BaseException) and not isinstance(failure, DependencyError):
            raise failure
    if isinstance(trending, dict):
        memory.trending = [v["video_id"] for v in trending["videos"]]
    if isinstance(history, dict):  # a failed trending read falls back to the last known trending list
        items = ranking.personalized(catalog, history["video_ids"], memory.trending, limit, rng)
        memory.remember_feed(user_id, items)
        return json_response({"user_id": user_id, "items": items})
    return json_response({"user_id": user_id, "items": _fall_back(ctx, memory, catalog, user_id, limit, rng)})


@router.post(api.UPLOAD, status_code=201, dependencies=INTERNAL)
def upload(body: Upload, request: Request, creator_id: str = Depends(forwarded_user)) -> dict:
    entry = request.app.state.catalog.add(body.title, creator_id, body.tags)
    return {"video_id": entry.video_id, "title": entry.title, "creator_id": entry.creator_id, "tags": list(entry.tags)}


@router.get(api.VIDEO)
def video(video_id: PathId, request: Request) -> dict:
    entry = request.app.state.catalog.entries.get(video_id)
    if entry is None:
        raise HTTPException(status_code=404, detail=f"no video {video_id}")
    return {"video_id": entry.video_id, "title": entry.title, "creator_id": entry.creator_id, "tags": list(entry.tags)}


@router.get(api.CREATOR_VIDEOS)
def creator_videos(creator_id: PathId, request: Request) -> dict:
    return {"creator_id": creator_id, "video_ids": request.app.state.catalog.by_creator(creator_id)}


def _fall_back(
    ctx: ServiceContext, memory: Memory, catalog: Catalog, user_id: str, limit: int, rng: random.Random
) -> list[dict]:
    """naive: straight to generic content. ladder: personalized -> cached -> trending -> generic."""
    if ctx.profiles.current.fallbacks.recommendations == "ladder":
        if user_id in memory.feeds:
            FALLBACKS.labels("recommendations_cached").inc()
            return [{**item, "source": "cached"} for item in memory.feeds[user_id]]
        if memory.trending:
            FALLBACKS.labels("recommendations_trending").inc()
            return ranking.trending_only(catalog, memory.trending, limit, rng)
    FALLBACKS.labels("recommendations_generic").inc()
    return generic_items(limit, ctx.settings.seed)


def create_app(settings: ServiceSettings, transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    ctx = build_context(settings, transport)
    db = Database(settings.data_dir / f"{settings.instance}.sqlite3", SCHEMA)
    ctx.closers.append(db.close)
    app = create_service_app(ctx, router)
    install_hot_routes(app, hot.routes(recommendations))
    app.state.catalog = Catalog(db, settings.seed)
    app.state.memory = Memory()
    app.include_router(replica.router)
    app.state.replica = replica.CatalogReplica(app.state.catalog)
    app.state.shipper = None
    peers = settings.dependencies.get("recommender", [])
    if peers:  # uploads replicate by the views log's rules (services/common/replication.py)
        from services.common.replication import Shipper, peer_clients

        app.state.shipper = Shipper(
            app.state.replica,
            peer_clients(peers, "recommender", ctx),
            settings.instance,
            path=api.REPLICATION_VIDEOS,
            time_field="created_at",
            design=lambda: ctx.profiles.current.replication,
        )
        ctx.background.append(app.state.shipper.run)
    return app
