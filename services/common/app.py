"""The FastAPI app every service is built on: /healthz, /metrics, accounting headers, clear errors."""
from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.common import accounting
from services.common.errors import DependencyError
from services.common.http import DependencyClient, make_http_client
from services.common.metrics import HTTP_LATENCY, HTTP_REQUESTS
from services.common.policy import Profile, ProfileHolder, load_profile
from services.common.settings import ServiceSettings


@dataclass
class ServiceContext:
    settings: ServiceSettings
    profiles: ProfileHolder
    http: httpx.AsyncClient
    deps: dict[str, DependencyClient] = field(default_factory=dict)
    closers: list[Callable[[], Any]] = field(default_factory=list)


def build_context(settings: ServiceSettings, transport: httpx.AsyncBaseTransport | None = None) -> ServiceContext:
    profile = load_profile(settings.profile) if settings.profile else Profile(name="default")
    profiles = ProfileHolder(profile)
    http = make_http_client(transport)
    deps = {name: DependencyClient(name, urls, profiles, http) for name, urls in settings.dependencies.items()}
    return ServiceContext(settings=settings, profiles=profiles, http=http, deps=deps)


def context(request: Request) -> ServiceContext:
    return request.app.state.ctx


class AccountingMiddleware:
    """Pure ASGI (cheaper than BaseHTTPMiddleware): counts, times, and reports attempts in headers."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        account = accounting.begin()
        started = time.monotonic()
        status = 500

        async def send_with_headers(message: dict) -> None:
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


def create_service_app(ctx: ServiceContext, *routers: Any) -> FastAPI:
    settings = ctx.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await ctx.http.aclose()
        for close in ctx.closers:
            close()

    app = FastAPI(title=f"blackout-{settings.service}", version="0.1.0", lifespan=lifespan)
    app.state.ctx = ctx
    app.add_middleware(AccountingMiddleware)

    @app.exception_handler(DependencyError)
    async def dependency_failed(request: Request, exc: DependencyError) -> JSONResponse:
        return JSONResponse({"detail": f"dependency unavailable: {exc}"}, status_code=dependency_status(exc))

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict:
        return {
            "status": "ok",
            "service": settings.service,
            "instance": settings.instance,
            "dc": settings.dc,
            "profile": ctx.profiles.current.name,
        }

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    return app
