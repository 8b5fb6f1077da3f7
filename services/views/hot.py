"""The feed's three views reads on the fast path (services/common/hot_routes.py): the same endpoint
functions as the FastAPI routes, for well-formed requests only; FastAPI answers everything else."""

from __future__ import annotations

import orjson
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from services.common.hot_routes import Decline, Endpoint, HotRoute, path_id, query_int
from services.common.ids import ID


def routes(
    batch_counts: Endpoint, counts_request: type[BaseModel], user_history: Endpoint, trending: Endpoint
) -> list[HotRoute]:
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
            or not 1 <= len(ids) <= 200
            or not all(isinstance(i, str) and ID.fullmatch(i) for i in ids)
        ):
            raise Decline
        return await batch_counts(counts_request.model_construct(video_ids=ids), request)

    async def history(request: Request, params: dict[str, str]) -> Response:
        return await user_history(path_id(params, "user_id"), request, query_int(request, "limit", 50, 1, 500))

    async def top(request: Request, params: dict[str, str]) -> Response:
        return await trending(request, query_int(request, "limit", 20, 1, 200))

    return [
        HotRoute("POST", "/views/counts", counts),
        HotRoute("GET", "/users/{user_id}/history", history),
        HotRoute("GET", "/trending", top),
    ]
