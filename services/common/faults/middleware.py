"""Brownout: the instance answers, but slowly; a login limit: logins past a rate are refused. Pure ASGI, so each
costs one dict check when nothing is active."""

from __future__ import annotations

import json
import math
from typing import Any

from services.common.api import HEALTHZ, METRICS
from services.common.faults.registry import FaultRegistry

# Operations stay fast under a brownout: health checks, scrapes and the controller's own admin calls
# (which must be able to lift the fault) are never delayed.
SPARED_PATHS = (HEALTHZ, METRICS)
SPARED_PREFIX = "/admin/"


def spared(path: str) -> bool:
    return path in SPARED_PATHS or path == SPARED_PREFIX.rstrip("/") or path.startswith(SPARED_PREFIX)


class BrownoutMiddleware:
    def __init__(self, app: Any, faults: FaultRegistry) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not spared(scope.get("path", "")):
            await self.faults.brownout()
        await self.app(scope, receive, send)


class LoginLimitMiddleware:
    """An operator's login limit (a ``login_limit`` on the registry): a login past the rate gets 429 at once,
    with the seconds until one may pass as Retry-After (users' apps wait that long before trying again)."""

    def __init__(self, app: Any, faults: FaultRegistry) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path") == "/login":
            wait = self.faults.login_wait_s()
            if wait is not None:
                body = json.dumps({"detail": "logins are rate-limited by the operators: try again later"}).encode()
                headers = [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(max(1, math.ceil(wait))).encode()),
                ]
                await send({"type": "http.response.start", "status": 429, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
