"""The feed's three views reads on the fast path (services/common/hot_routes.py): the same endpoint
functions as the FastAPI routes, for well-formed requests only; FastAPI answers everything else."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from services.common.hot_routes import Decline, Endpoint, HotRoute, path_id, query_int
from services.common.ids import ID
from services.views.api import (
    COUNTS,
    COUNTS_BATCH,
    HISTORY,
    HISTORY_LIMIT,
    HISTORY_MAX,
    TRENDING,
    TRENDING_LIMIT,
    TRENDING_MAX,
    CountsRequest,
)


def routes(batch_counts: Endpoint, user_history: Endpoint, trending: Endpoint) -> list[HotRoute]:
    """The fast path of the app's own endpoints (given by services/views/app.py, which imports this module)."""

    async def counts(request: Request, params: dict[str, str]) -> Response:
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise Decline
        try:
            body = orjson.loads(await request.body())
        except ValueError:
            raise Decline from None
        ids = body.get("video_ids") if isinstance(body, dict) else None
        if (
            not isinstance(ids, list)
            or not 1 <= len(ids) <= COUNTS_BATCH
            or not all(isinstance(i, str) and ID.fullmatch(i) for i in ids)
        ):
            raise Decline
        return await batch_counts(CountsRequest.model_construct(video_ids=ids), request)

    async def history(request: Request, params: dict[str, str]) -> Response:
        return await user_history(
            path_id(params, "user_id"), request, query_int(request, "limit", HISTORY_LIMIT, 1, HISTORY_MAX)
        )

    async def top(request: Request, params: dict[str, str]) -> Response:
        return await trending(request, query_int(request, "limit", TRENDING_LIMIT, 1, TRENDING_MAX))

    return [
        HotRoute("POST", COUNTS, counts),
        HotRoute("GET", HISTORY, history),
        HotRoute("GET", TRENDING, top),
    ]
