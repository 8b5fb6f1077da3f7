"""Where a control call's token may come from: the Authorization header (CLI, scripts) or the control room's
cookie (the browser). A token in the URL is accepted only by GET /room, which trades it for the cookie."""
from __future__ import annotations

import hmac

from fastapi import Request

COOKIE = "blackout_control"
ROOM_PATH = "/room"


def presented_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if header:
        return header.removeprefix("Bearer ").strip()
    if request.url.path == ROOM_PATH and "token" in request.query_params:
        return request.query_params["token"]
    return request.cookies.get(COOKIE, "")


def token_matches(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode(), token.encode())
