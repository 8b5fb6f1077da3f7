"""The feed's recommender route on the fast path (services/common/hot_routes.py): the same endpoint
function as the FastAPI route, for well-formed requests only; FastAPI answers everything else."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from services.common.hot_routes import HotRoute, path_id, query_int
from services.recommender import app as recommender


async def recommendations(request: Request, params: dict[str, str]) -> Response:
    user_id = path_id(params, "user_id")
    return await recommender.recommendations(user_id, request, query_int(request, "limit", 10, 1, 50))


ROUTES = [HotRoute("GET", "/recommendations/{user_id}", recommendations)]
