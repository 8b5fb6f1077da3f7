"""GET /feed on the fast path (services/common/hot_routes.py): the same caller check and endpoint
function as the FastAPI route, for well-formed requests with a valid session only; FastAPI answers
everything else (a bad limit, a missing or expired token) with its own errors."""

from __future__ import annotations

from fastapi import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from services.common.hot_routes import Decline, Endpoint, HotRoute, query_int
from services.gateway.api import FEED, FEED_LIMIT, FEED_MAX


def routes(caller: Endpoint, feed: Endpoint) -> list[HotRoute]:
    """The fast path of the app's own caller check and endpoint (given by services/gateway/app.py, which imports
    this module)."""

    async def fast_feed(request: Request, params: dict[str, str]) -> Response:
        limit = query_int(request, "limit", FEED_LIMIT, 1, FEED_MAX)
        try:
            who = await caller(request, request.headers.get("authorization"))
        except HTTPException:
            raise Decline from None  # nothing was done yet: FastAPI's route says why, as always
        return await feed(request, limit, who)

    return [HotRoute("GET", FEED, fast_feed)]
