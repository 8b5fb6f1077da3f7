"""GET /feed on the fast path (services/common/hot_routes.py): the same caller check and endpoint
function as the FastAPI route, for well-formed requests with a valid session only; FastAPI answers
everything else (a bad limit, a missing or expired token) with its own errors."""
from __future__ import annotations

from fastapi import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from services.common.hot_routes import Decline, HotRoute, query_int
from services.gateway import app as gateway


async def feed(request: Request, params: dict[str, str]) -> Response:
    limit = query_int(request, "limit", 10, 1, 50)
    try:
        who = await gateway.caller(request, request.headers.get("authorization"))
    except HTTPException:
        raise Decline from None  # nothing was done yet: FastAPI's route says why, as always
    return await gateway.feed(request, limit, who)


ROUTES = [HotRoute("GET", "/feed", feed)]
