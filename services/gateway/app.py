"""gateway: the feed gateway, the only service users call. Composes auth, recommender, views and earnings."""

from __future__ import annotations

import time
from typing import Any, cast

import httpx
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import Response

from services.auth import api as auth_api
from services.common.app import ServiceContext, build_context, context, create_service_app, dependency_status
from services.common.errors import DependencyError, DependencyRejected
from services.common.hot_routes import install as install_hot_routes
from services.common.http import json_or_raise, refusal_detail
from services.common.ids import PathId
from services.common.lockout import LOCKOUT_HEADER, FailureLimiter
from services.common.metrics import FALLBACKS
from services.common.overload import Dimmer
from services.common.perimeter import USER_HEADER
from services.common.policy import ProfileHolder
from services.common.resilience import DEADLINE_HEADER, parse_header
from services.common.responses import json_response
from services.common.seed import generic_items
from services.common.settings import ServiceSettings
from services.common.tokens import TokenError, bearer
from services.earnings.api import EARNINGS, Statement
from services.gateway import api, hot
from services.gateway.identity import Identity, Verifier
from services.gateway.symptoms import count_earnings, count_feed_items
from services.recommender import api as recommender_api
from services.views import api as views_api

router = APIRouter(tags=["gateway"])


class Memory:
    """Last values the gateway read, so a failed read can be shown as stale instead of wrong."""

    def __init__(self) -> None:
        self.views: dict[str, int] = {}
        self.earnings: dict[str, dict] = {}


def _token(authorization: str | None) -> str:
    try:
        return bearer(authorization)
    except TokenError as exc:
        raise HTTPException(status_code=401, detail=str(exc)) from None


async def caller(request: Request, authorization: str | None = Header(None)) -> Identity:
    return await request.app.state.verifier.identify(_token(authorization))


async def fresh_caller(request: Request, authorization: str | None = Header(None)) -> Identity:
    return await request.app.state.verifier.identify(_token(authorization), fresh=True)


# What auth refuses because of what the user sent (bad credentials, a malformed name): passed on
# with auth's reason. Any other 4xx means the gateway asked wrongly: a 502 (our bug).
USER_FAULTS = {400, 401, 403, 422}


# Per client address: after this many refused logins (401) within the window, its logins answer 429 until the
# oldest leaves the window. Only failures count: the load tests log thousands of users in from 127.0.0.1, all
# correctly. Auth also locks an account after a few failures (services/auth/app.py).
LOGIN_CLIENT_MAX_FAILURES, LOGIN_CLIENT_WINDOW_S = 30, 60.0


def _too_many(detail: str, retry_after: str) -> HTTPException:
    return HTTPException(status_code=429, detail=detail, headers={"Retry-After": retry_after})


@router.post(api.LOGIN)
async def login(body: api.LoginRequest, request: Request, ctx: ServiceContext = Depends(context)) -> dict:
    failures: FailureLimiter = request.app.state.login_failures
    client = request.client.host if request.client else "unknown"
    wait = failures.retry_after(client)
    if wait:
        raise _too_many("too many failed logins from this client: try again later", str(wait))
    try:
        response = await ctx.deps["auth"].request("POST", auth_api.LOGIN, json=body.model_dump())
        if response.status_code == 429 and LOCKOUT_HEADER in response.headers:  # auth locked the account
            raise _too_many(refusal_detail(response), response.headers.get("retry-after", "1"))
        answer = json_or_raise("auth", response)
    except DependencyError as exc:
        raise HTTPException(status_code=dependency_status(exc), detail=f"login unavailable: {exc}") from None
    except DependencyRejected as exc:
        if exc.status == 401:
            failures.failed(client)
        if exc.status in USER_FAULTS:
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
            raise HTTPException(status_code=exc.status, detail=exc.detail or "login refused", headers=headers) from None
        raise
    if not isinstance(answer, dict) or not isinstance(answer.get("token"), str):
        raise HTTPException(status_code=502, detail="login failed: auth answered without a token")
    return answer


@router.get(api.FEED)
async def feed(
    request: Request, limit: int = Query(api.FEED_LIMIT, ge=1, le=api.FEED_MAX), who: Identity = Depends(caller)
) -> Response:
    ctx: ServiceContext = request.app.state.ctx
    try:
        recs: recommender_api.Feed = await ctx.deps["recommender"].get_json(
            recommender_api.recommendations_path(who.user_id), params={"limit": limit}
        )
        items = recs["items"]
    except DependencyError:
        FALLBACKS.labels("feed_generic").inc()
        items = cast(list[recommender_api.FeedItem], generic_items(limit, ctx.settings.seed))  # the same keys
    if items:
        await _attach_view_counts(ctx, request.app.state.memory, items)
    return json_response({"user_id": who.user_id, "items": items})


async def _attach_view_counts(ctx: ServiceContext, memory: Memory, items: list[recommender_api.FeedItem]) -> None:
    if ctx.dimmer is not None and not ctx.dimmer.full():  # overloaded: counts are optional, remembered ones do
        FALLBACKS.labels("view_counts_dimmed").inc()
        _remembered_counts(memory, items, honest=True)
        return
    ids = [item["video_id"] for item in items]
    honest = ctx.profiles.current.fallbacks.view_counts == "stale_or_unavailable"
    try:
        answer: views_api.Counts = await ctx.deps["views"].post_json(views_api.COUNTS, {"video_ids": ids})
    except DependencyError:
        FALLBACKS.labels("view_counts_stale" if honest else "view_counts_zero").inc()
        _remembered_counts(memory, items, honest)
        return
    counts = answer["counts"]
    # A views replica cut off from its peer cannot see the views taken in the other data center: its 0 means
    # "none here", not "none". The honest policy does not show it as 0 views (the outage's symptom).
    cut_off = honest and answer.get("complete") is False
    for item in items:
        vid, n = item["video_id"], counts.get(item["video_id"], 0)
        if n == 0 and cut_off:
            known = memory.views.get(vid)
            item["views"], item["views_status"] = (known, "stale") if known else (None, "unavailable")
        else:
            item["views"], item["views_status"] = n, "ok"
            if n > 0:  # a 0 is never worth showing again as "stale": the video may have views by then
                memory.views[vid] = n
    count_feed_items(items)


def _remembered_counts(memory: Memory, items: list[recommender_api.FeedItem], honest: bool) -> None:
    """Counts without asking views: the last ones read, marked stale, or unavailable; 0 unless ``honest``."""
    for item in items:
        if not honest:  # what the outage showed users: a failed read rendered as 0 views
            item["views"], item["views_status"] = 0, "ok"
        elif item["video_id"] in memory.views:
            item["views"], item["views_status"] = memory.views[item["video_id"]], "stale"
        else:
            item["views"], item["views_status"] = None, "unavailable"
    count_feed_items(items, faked_zero=not honest)


@router.post(api.VIEW)
async def watch(video_id: PathId, body: api.ViewRequest, request: Request, who: Identity = Depends(caller)) -> dict:
    ctx: ServiceContext = request.app.state.ctx
    event = {"event_id": body.event_id, "video_id": video_id, "user_id": who.user_id}
    try:
        return await ctx.deps["views"].post_json(views_api.RECORD, event)
    except DependencyRejected as exc:
        if exc.status == 409:  # the user reused their event_id for another video: theirs to fix
            raise HTTPException(status_code=409, detail=exc.detail) from None
        raise


@router.post(api.UPLOAD, status_code=201)
async def upload(body: api.UploadRequest, request: Request, who: Identity = Depends(fresh_caller)) -> dict:
    ctx: ServiceContext = request.app.state.ctx
    # The creator is the verified caller, forwarded beside the service credential (never taken from a body).
    return await ctx.deps["recommender"].post_json(
        recommender_api.UPLOAD, body.model_dump(), headers={USER_HEADER: who.user_id}
    )


@router.get(api.EARNINGS)
async def my_earnings(request: Request, who: Identity = Depends(caller)) -> dict:
    ctx: ServiceContext = request.app.state.ctx
    memory: Memory = request.app.state.memory
    try:
        answer: Statement = await ctx.deps["earnings"].get_json(EARNINGS.format(creator_id=who.user_id))
    except DependencyError:
        last = memory.earnings.get(who.user_id)
        if ctx.profiles.current.fallbacks.earnings == "stale" and last is not None:
            FALLBACKS.labels("earnings_stale").inc()
            count_earnings("stale")
            return {**last, "status": "stale"}
        FALLBACKS.labels("earnings_empty").inc()
        count_earnings("unavailable")
        return {"creator_id": who.user_id, "views": None, "earnings_cents": None, "status": "unavailable"}
    result = {
        "creator_id": who.user_id,
        "views": answer["views"],
        "earnings_cents": answer["earnings_cents"],
        "status": answer.get("status", "ok"),
        "computed_at": answer.get("computed_at", time.time()),
    }
    if result["status"] == "ok":
        memory.earnings[who.user_id] = result
    count_earnings(result["status"])
    return result


class EdgeDeadline:
    """Pure ASGI, outermost: when the profile propagates deadlines, every user request gets at most
    ``request_deadline_s`` (a smaller deadline the client sent is kept; a missing, larger or malformed
    one is replaced). It only rewrites the header, which the common DeadlineMiddleware then adopts."""

    _key = DEADLINE_HEADER.lower().encode("latin-1")

    def __init__(self, app: Any, profiles: ProfileHolder) -> None:
        self.app = app
        self.profiles = profiles

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        profile = self.profiles.current
        if scope["type"] != "http" or not profile.deadline_propagation:
            await self.app(scope, receive, send)
            return
        budget_ms = profile.request_deadline_s * 1000.0
        headers = []
        for key, value in scope.get("headers", []):
            if key.lower() != self._key:
                headers.append((key, value))
                continue
            try:
                budget_ms = min(budget_ms, parse_header(value.decode("latin-1")))
            except ValueError:
                pass  # a malformed header from a user: they get the full budget
        headers.append((self._key, str(budget_ms).encode("latin-1")))
        await self.app({**scope, "headers": headers}, receive, send)


def create_app(settings: ServiceSettings, transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    settings.secret_bytes()  # fail fast: local verification needs the signing secret
    ctx = build_context(settings, transport)
    ctx.dimmer = Dimmer(lambda: ctx.profiles.current.overload.dimmer, optional="feed_view_counts")
    app = create_service_app(ctx, router)
    install_hot_routes(app, hot.routes(caller, feed))
    app.add_middleware(EdgeDeadline, profiles=ctx.profiles)
    app.state.verifier = Verifier(ctx)
    app.state.login_failures = FailureLimiter(LOGIN_CLIENT_MAX_FAILURES, LOGIN_CLIENT_WINDOW_S)
    app.state.memory = Memory()
    return app
