"""Brownout: the instance answers, but slowly. Pure ASGI, so it costs one dict check when no fault is active."""

from __future__ import annotations

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
