"""Where a control call's token may come from: the Authorization header (CLI, scripts) or the control room's
cookie (the browser). A token in the URL is accepted only by GET /room, which trades it for the cookie."""

from __future__ import annotations

import hmac

from fastapi import Request

from services.common.tokens import TokenError, bearer

COOKIE = "blackout_control"
ROOM_PATH = "/room"
# The control room's page sends this header with every change it asks for. A page of another origin cannot
# (a custom header needs a CORS preflight this API never grants), while the SameSite cookie alone goes along
# with any request from the same site: any other port of 127.0.0.1.
ROOM_HEADER = "X-Blackout-Room"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def presented_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if header:
        try:
            return bearer(header)
        except TokenError:
            return ""  # matches no token: a 401 like any wrong one
    if request.url.path == ROOM_PATH and "token" in request.query_params:
        return request.query_params["token"]
    return request.cookies.get(COOKIE, "")


def forged(request: Request) -> str | None:
    """Why a change made with the room's cookie may come from another page (None: it is the room's own)."""
    if request.headers.get("authorization") or request.method in SAFE_METHODS:
        return None
    if request.headers.get(ROOM_HEADER) != "1":
        return f"a change made with the control room's cookie needs the {ROOM_HEADER} header (the room's page sends it)"
    site = request.headers.get("sec-fetch-site")
    if site not in (None, "same-origin"):
        return f"a change made with the control room's cookie must come from the room's page (this one is {site})"
    return None


def token_matches(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode(), token.encode())
