"""The FastAPI app every service is built on: /healthz, /metrics, /admin/profile, /admin/faults, accounting headers,
deadline propagation (when the profile asks for it), clear errors."""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.common import accounting
from services.common.api import ADMIN_PROFILE, HEALTHZ, METRICS
from services.common.errors import ConfigError, DependencyError, DependencyRejected
from services.common.fast_http import HttpClient
from services.common.faults import BrownoutMiddleware, FaultRegistry, LoginLimitMiddleware, fault_router
from services.common.faults.scoped import RequestFaultsMiddleware
from services.common.http import DependencyClient, make_http_client
from services.common.metrics import HTTP_LATENCY, HTTP_REQUESTS
from services.common.overload import AdmissionMiddleware, Dimmer
from services.common.perimeter import SERVICE_KEY_HEADER, BodyLimit, host_check
from services.common.policy import Profile, ProfileHolder, load_profile, parse_profile
from services.common.resilience import DeadlineMiddleware
from services.common.settings import ServiceSettings
from services.common.tokens import TokenError, bearer


@dataclass
class ServiceContext:
    settings: ServiceSettings
    profiles: ProfileHolder
    http: HttpClient
    deps: dict[str, DependencyClient] = field(default_factory=dict)
    closers: list[Callable[[], Any]] = field(default_factory=list)
    # Long-running coroutines (e.g. replication), each started as a task when the app starts and
    # cancelled (and awaited) when it stops, before the HTTP client and the closers are closed.
    background: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
    faults: FaultRegistry = field(default_factory=FaultRegistry)  # injected by the chaos controller
    # A service with optional work (the gateway: a feed's counts) sets one before its app is built: under
    # overload, admission control's windows dim it before they shrink the limit. Without one, they shrink it.
    dimmer: Dimmer | None = None


def build_context(settings: ServiceSettings, transport: httpx.AsyncBaseTransport | None = None) -> ServiceContext:
    profile = load_profile(settings.profile) if settings.profile else Profile(name="default")
    profiles = ProfileHolder(profile)
    # Every call this instance makes carries the stack's credential (fails fast here when it is missing).
    http = make_http_client(transport, headers={SERVICE_KEY_HEADER: settings.service_key_bytes().decode()})
    faults = FaultRegistry()
    deps = {
        name: DependencyClient(name, urls, profiles, http, faults=faults)
        for name, urls in settings.dependencies.items()
    }
    return ServiceContext(settings=settings, profiles=profiles, http=http, deps=deps, faults=faults)


def context(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


class AccountingMiddleware:
    """Pure ASGI (cheaper than BaseHTTPMiddleware): counts, times, and reports attempts in headers."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        account = accounting.begin()
        started = time.monotonic()
        status = 500

        async def send_with_headers(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((accounting.ATTEMPTS_HEADER.lower().encode(), str(account.attempts).encode()))
                headers.append((accounting.CALLS_HEADER.lower().encode(), str(account.calls).encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            HTTP_REQUESTS.labels(route, scope["method"], str(status)).inc()
            HTTP_LATENCY.labels(route).observe(time.monotonic() - started)


def dependency_status(exc: DependencyError) -> int:
    """503 only when the request was never sent (so a write surely did not happen); else 502/504:
    the dependency may have acted on it."""
    if exc.outcome == "timeout":
        return 504
    if exc.outcome == "error":
        return 502
    return 503


def admin_guard(settings: ServiceSettings) -> Callable[..., Any]:
    """A dependency admitting only ``Authorization: Bearer <the instance's BLACKOUT_ADMIN_SECRET>``.

    Not the token secret: whoever may change a profile or inject a fault must not be able to mint user tokens.
    """
    secret = settings.admin_secret.get_secret_value().encode() if settings.admin_secret else b""

    async def require_admin(authorization: str | None = Header(None)) -> None:
        if not secret:
            raise HTTPException(status_code=403, detail="admin disabled: this instance has no BLACKOUT_ADMIN_SECRET")
        try:
            token = bearer(authorization)
        except TokenError:
            token = ""
        # compare_digest: the time taken must not tell a caller how much of the secret it got right
        if not token or not hmac.compare_digest(token.encode(), secret):
            raise HTTPException(
                status_code=401,
                detail="admin routes need Authorization: Bearer <secret>",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return require_admin


def create_service_app(ctx: ServiceContext, *routers: Any) -> FastAPI:
    settings = ctx.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The fault sweeper drops expired faults even on an instance that gets no traffic.
        tasks: list[asyncio.Task[None]] = [
            asyncio.create_task(run()) for run in (*ctx.background, ctx.faults.sweep_forever)
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await ctx.http.aclose()
        for close in ctx.closers:
            close()

    # FastAPI's native OpenTelemetry bridge is off: nothing here configures a provider, yet asking
    # whether one is configured cost every request a few percent of its CPU. /metrics is Prometheus.
    app = FastAPI(
        title=f"blackout-{settings.service}",
        version="0.1.0",
        lifespan=lifespan,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.ctx = ctx
    # Added first, so it runs inside accounting (whose headers then cover its 504s too). Consulted per
    # request: a profile swapped live turns propagation on or off at once. A brownout runs inside the
    # deadline, so the delay it injects eats the request's budget as a slow server would.
    app.add_middleware(BrownoutMiddleware, faults=ctx.faults)
    app.add_middleware(LoginLimitMiddleware, faults=ctx.faults)  # an operator's lever: refused logins still counted
    app.add_middleware(DeadlineMiddleware, enabled=lambda: ctx.profiles.current.deadline_propagation)
    # A request-scoped fault set (the fault-space search's experiments) is verified before accounting counts it.
    admin_secret = settings.admin_secret.get_secret_value().encode() if settings.admin_secret else b""
    app.add_middleware(RequestFaultsMiddleware, instance=settings.instance, admin_secret=admin_secret)
    app.add_middleware(AccountingMiddleware)
    # Outside those: a request refused for overload costs nothing but its 503 (read per request: live swaps).
    app.add_middleware(AdmissionMiddleware, policy=lambda: ctx.profiles.current.overload.admission, dimmer=ctx.dimmer)
    # Outside even that: a request naming a foreign Host (DNS rebinding) or an oversized body is refused first.
    app.add_middleware(BodyLimit)
    app.add_middleware(host_check, settings=settings)

    @app.exception_handler(DependencyError)
    async def dependency_failed(request: Request, exc: DependencyError) -> JSONResponse:
        return JSONResponse({"detail": f"dependency unavailable: {exc}"}, status_code=dependency_status(exc))

    @app.exception_handler(DependencyRejected)
    async def dependency_refused(request: Request, exc: DependencyRejected) -> JSONResponse:
        # Not mapped by the route to its caller's 4xx: our own request was wrong, a bug (502), not an outage.
        return JSONResponse({"detail": f"bad request to a dependency: {exc}"}, status_code=502)

    @app.get(HEALTHZ, tags=["ops"])
    async def healthz() -> dict[str, Any]:
        return {
            "status": "ok",
            "service": settings.service,
            "instance": settings.instance,
            "dc": settings.dc,
            "profile": ctx.profiles.current.name,
        }

    @app.get(METRICS, tags=["ops"], include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    admin = [Depends(admin_guard(settings))]

    @app.get(ADMIN_PROFILE, tags=["ops"], dependencies=admin)
    async def get_profile() -> dict[str, Any]:
        return ctx.profiles.current.model_dump(mode="json")

    @app.put(ADMIN_PROFILE, tags=["ops"], dependencies=admin)
    async def put_profile(request: Request) -> JSONResponse:
        """Swap the profile live: the next dependency call runs under it (breakers etc. rebuilt)."""
        try:
            data = await request.json()
        except ValueError:
            return JSONResponse({"detail": "body is not JSON: send a profile as a JSON object"}, status_code=422)
        try:
            profile = parse_profile(data, "PUT /admin/profile")
        except ConfigError as exc:
            return JSONResponse({"detail": exc.reason}, status_code=422)
        previous = ctx.profiles.swap(profile)
        return JSONResponse({"previous": previous.name, "profile": profile.model_dump(mode="json")})

    # The service's own routes before the fault admin routes: FastAPI tries routes in order, several us each.
    for router in routers:
        app.include_router(router)
    app.include_router(fault_router(ctx.faults, admin_guard(settings)))
    return app
