"""The feed's recommender route on the fast path (services/common/hot_routes.py): the same endpoint
function as the FastAPI route, for well-formed requests only; FastAPI answers everything else."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from services.common.hot_routes import Endpoint, HotRoute, path_id, query_int
from services.recommender.api import FEED_LIMIT, FEED_MAX, RECOMMENDATIONS


def routes(recommendations: Endpoint) -> list[HotRoute]:
    """The fast path of the app's own endpoint (given by services/recommender/app.py, which imports this module)."""

    async def fast_recommendations(request: Request, params: dict[str, str]) -> Response:
        user_id = path_id(params, "user_id")
        return await recommendations(user_id, request, query_int(request, "limit", FEED_LIMIT, 1, FEED_MAX))

    return [HotRoute("GET", RECOMMENDATIONS, fast_recommendations)]
