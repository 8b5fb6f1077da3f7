"""A fast path in front of FastAPI's router for a service's few hottest routes (the feed's).

Why: FastAPI's routing (a nested router tried route by route), its dependency solving and its
request/response wrappers cost a feed handling two to three times what the handling itself does
(profiles in docs/benchmarks.md). For the handful of routes every feed passes through, this
middleware matches the path itself, parses the few parameters those routes take, and calls the very
same endpoint function the FastAPI route calls. It only takes requests it can read cheaply and
surely: anything else (a malformed parameter, a bad token, an unexpected body) it *declines*, and
FastAPI's route answers it, with its validation and its error messages. The OpenAPI schema is
FastAPI's, unchanged.

It sits innermost among the app's middleware, so accounting, deadlines, admission control and
brownouts apply to it as to any route; exceptions an endpoint raises go to the app's own exception
handlers. ``scope["route"]`` is set so metrics are labelled with the route's path.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from services.common.ids import ID


class Decline(Exception):
    """The fast path does not take this request: FastAPI's route answers it."""


Handler = Callable[[Request, dict[str, str]], Awaitable[Response]]
Endpoint = Callable[..., Awaitable[Any]]  # an app's own FastAPI endpoint function, called by a handler


class HotRoute:
    def __init__(self, method: str, path: str, handler: Handler) -> None:
        self.method = method
        self.path = path  # the FastAPI route's path template, e.g. /users/{user_id}/history
        self.pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "$")
        self.handler = handler


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high]; Decline for anything FastAPI should judge."""
    values = [v for k, v in parse_qsl(request.scope.get("query_string", b"").decode("latin-1")) if k == name]
    if not values:
        return default
    if len(values) > 1 or not values[0].isdigit() or not low <= int(values[0]) <= high:
        raise Decline
    return int(values[0])


def path_id(params: dict[str, str], name: str) -> str:
    value = params[name]
    if not ID.fullmatch(value):
        raise Decline
    return value


class _Recorded:
    """``receive`` that keeps what it handed out, so a declined request can be read again by FastAPI."""

    def __init__(self, receive: Any) -> None:
        self._receive = receive
        self._seen: list[dict[str, Any]] = []

    async def __call__(self) -> dict[str, Any]:
        message: dict[str, Any] = await self._receive()
        self._seen.append(message)
        return message

    def replay(self) -> Any:
        pending = list(self._seen)

        async def receive() -> dict[str, Any]:
            return pending.pop(0) if pending else await self._receive()

        return receive


class HotRoutes:
    def __init__(self, app: Any, routes: list[HotRoute], fastapi_app: FastAPI) -> None:
        self.app = app
        self.routes = routes
        self.fastapi_app = fastapi_app

    def _match(self, scope: dict[str, Any]) -> tuple[HotRoute, dict[str, str]] | None:
        for route in self.routes:
            if route.method == scope["method"]:
                found = route.pattern.match(scope["path"])
                if found:
                    return route, found.groupdict()
        return None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        matched = self._match(scope) if scope["type"] == "http" else None
        if matched is None:
            await self.app(scope, receive, send)
            return
        route, params = matched
        recorded = _Recorded(receive)
        request = Request(scope, recorded)
        try:
            response = await route.handler(request, params)
        except Decline:
            await self.app(scope, recorded.replay(), send)
            return
        except Exception as exc:  # what the app's exception handlers would have made of it
            response = await self._handled(request, exc)
        scope["route"] = route
        await response(scope, receive, send)

    async def _handled(self, request: Request, exc: Exception) -> Response:
        for cls in type(exc).__mro__:
            handler = self.fastapi_app.exception_handlers.get(cls)
            if handler is not None:
                answer = handler(request, exc)
                return await answer if inspect.isawaitable(answer) else answer
        raise exc


def install(app: FastAPI, routes: list[HotRoute]) -> None:
    """Put the fast path innermost among ``app``'s middleware (before its first request)."""
    app.user_middleware.append(Middleware(HotRoutes, routes=routes, fastapi_app=app))
