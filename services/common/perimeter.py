"""What a service checks of a request before a route runs: the Host it names, the size of its body, and
(on internal routes) the stack's service credential.

- Host: only the names the service is reached by (127.0.0.1, localhost, its configured host; the Docker
  runtime uses host networking, so containers are reached at 127.0.0.1 too). A DNS-rebinding page in a
  browser on this machine sends its own name: it is refused (400) before any route runs.
- Body: at most ``MAX_BODY_BYTES`` (the largest real body, a replication batch of 500 records, is ~100 KiB at
  most): 413 beyond, so nobody makes a service buffer and parse an arbitrarily large body.
- Credential: the runtime generates one per stack at ``up`` and hands it to every service
  (``BLACKOUT_SERVICE_KEY``); every call a service makes carries it (``SERVICE_KEY_HEADER``, see
  ``services.common.http.make_http_client``), and internal routes (replication; the records a user's
  action through the gateway makes; auth's /login and /verify, the gateway's to call) refuse a request
  without it. Users never hold it: their writes come
  through the gateway, which forwards the user it verified (``USER_HEADER``).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from fastapi import Depends, Header, HTTPException, Request
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import PlainTextResponse

from services.common.ids import ID
from services.common.settings import ServiceSettings

SERVICE_KEY_HEADER = "X-Blackout-Service-Key"
USER_HEADER = "X-Blackout-User"  # the user the gateway verified, on a write it forwards
MAX_BODY_BYTES = 1 << 20
LOCAL_HOSTS = ("127.0.0.1", "localhost")


def allowed_hosts(settings: ServiceSettings) -> list[str]:
    return sorted({*LOCAL_HOSTS, settings.host})


def host_check(app: Any, settings: ServiceSettings) -> TrustedHostMiddleware:
    """Starlette's TrustedHostMiddleware (400 "Invalid host header" for any other name)."""
    return TrustedHostMiddleware(app, allowed_hosts=allowed_hosts(settings), www_redirect=False)


class BodyLimit:
    """Pure ASGI: 413 for a body over ``max_bytes``. Hand-written: Starlette caps only multipart parts.

    A declared Content-Length is judged before anything is read (the server then delivers at most that
    many bytes); a body without one (chunked) is counted as it is read, and the read that crosses the
    limit raises a 413 HTTPException (FastAPI passes those on as they are)."""

    def __init__(self, app: Any, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        await self.app(scope, self._counting(receive), send)

    def _counting(self, receive: Any) -> Callable[[], Any]:
        seen = 0

        async def counted() -> dict[str, Any]:
            nonlocal seen
            message: dict[str, Any] = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise HTTPException(status_code=413, detail=self._reason())
            return message

        return counted

    def _reason(self) -> str:
        return f"request body over {self.max_bytes} bytes"

    async def _refuse(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await PlainTextResponse(self._reason(), status_code=413)(scope, receive, send)


async def require_service(request: Request, x_blackout_service_key: str | None = Header(None)) -> None:
    """A dependency admitting only requests carrying the stack's service credential."""
    settings: ServiceSettings = request.app.state.ctx.settings
    # compare_digest: the time taken must not tell a caller how much of the key it got right
    if not hmac.compare_digest((x_blackout_service_key or "").encode(), settings.service_key_bytes()):
        raise HTTPException(
            status_code=401, detail=f"internal route: only the stack's services may call it ({SERVICE_KEY_HEADER})"
        )


INTERNAL = [Depends(require_service)]  # dependencies=INTERNAL on a route: services only


async def forwarded_user(x_blackout_user: str | None = Header(None)) -> str:
    """The user the gateway verified (a route using this must also require the service credential)."""
    if x_blackout_user is None or not ID.fullmatch(x_blackout_user):
        raise HTTPException(status_code=400, detail=f"{USER_HEADER} must name the verified user")
    return x_blackout_user
