"""Who is calling the control API, and what that role may reach.

Three roles. The instructor holds the control token (runs/.control.json): every route, the game master's
console (/console) among them. A team holds the code of its exercise (a short random code in the link it is
given, `/room?code=...`): the control room, `GET /exercise`, detect, act, hint, ack, its roles and status
updates, nothing else (403 with the reason). A watcher (Wheel of Misfortune: the others watch one team play)
holds the exercise's watch code (`/room?watch=...`): the room read-only, no change at all. A token comes in the Authorization header
(CLI, scripts, curl) or in the cookie the room's link is traded for (the browser); a token in the URL is
accepted only by GET /room, which trades it for the cookie and drops it from the address bar.

Cookies are per host, not per port: every stack on 127.0.0.1 shares one cookie jar, so each cookie's name
carries the stack's port and two stacks' rooms live side by side in one browser."""

from __future__ import annotations

import hmac
import json
import re
import secrets
from enum import StrEnum
from typing import Any

from fastapi import Request
from starlette.types import Scope

from services.common.tokens import TokenError, bearer

ROOM_PATH = "/room"
# The control room's page sends this header with every change it asks for. A page of another origin cannot
# (a custom header needs a CORS preflight this API never grants), while the SameSite cookie alone goes along
# with any request from the same site: any other port of 127.0.0.1.
ROOM_HEADER = "X-Blackout-Room"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TEAM_CODE_BYTES = 8  # 11 characters in the link; 64 bits no one guesses over a loopback socket


class Role(StrEnum):
    INSTRUCTOR = "instructor"
    TEAM = "team"
    WATCH = "watch"


# What a team's code reaches: the room (page, assets, state, charts, its filtered stream) and its exercise.
TEAM_ROUTES: tuple[tuple[frozenset[str], re.Pattern[str]], ...] = (
    (SAFE_METHODS, re.compile(r"/room(/static/[^/]+|/runbooks/[^/]+|/state|/window|/events)?")),
    (SAFE_METHODS, re.compile(r"/exercise")),
    (frozenset({"POST"}), re.compile(r"/exercise/(detect|act|hint|ack|roles|status-update)")),
)
# What a watcher's code reaches: the room and the exercise, read-only.
WATCH_ROUTES: tuple[tuple[frozenset[str], re.Pattern[str]], ...] = TEAM_ROUTES[:2]


class Keys:
    """The instructor's control token and the current exercise's team and watch codes (None: no exercise yet)."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.team_code: str | None = None
        self.watch_code: str | None = None

    def new_team_code(self) -> str:
        """Fresh codes for a new exercise: the previous team's and watchers' links stop working."""
        self.team_code = secrets.token_urlsafe(TEAM_CODE_BYTES)
        self.watch_code = secrets.token_urlsafe(TEAM_CODE_BYTES)
        return self.team_code

    def role(self, request: Request) -> Role | None:
        """The caller's role from the first credential it presents (None: no valid one)."""
        header = request.headers.get("authorization")
        if header:
            try:
                return self._of(bearer(header))
            except TokenError:
                return None  # no bearer token in it: a 401 like any wrong one
        if request.url.path == ROOM_PATH and request.method in SAFE_METHODS:
            if "token" in request.query_params:
                return Role.INSTRUCTOR if _same(request.query_params["token"], self.token) else None
            if "code" in request.query_params:
                return Role.TEAM if self._is_team(request.query_params["code"]) else None
            if "watch" in request.query_params:
                return Role.WATCH if self._is_watch(request.query_params["watch"]) else None
        names = cookie_names(request.scope)
        if _same(request.cookies.get(names[Role.INSTRUCTOR], ""), self.token):
            return Role.INSTRUCTOR
        if self._is_team(request.cookies.get(names[Role.TEAM], "")):
            return Role.TEAM
        if self._is_watch(request.cookies.get(names[Role.WATCH], "")):
            return Role.WATCH
        return None

    def _of(self, given: str) -> Role | None:
        if _same(given, self.token):
            return Role.INSTRUCTOR
        if self._is_team(given):
            return Role.TEAM
        return Role.WATCH if self._is_watch(given) else None

    def _is_team(self, given: str) -> bool:
        return self.team_code is not None and _same(given, self.team_code)

    def _is_watch(self, given: str) -> bool:
        return self.watch_code is not None and _same(given, self.watch_code)


def cookie_names(scope: Scope) -> dict[Role, str]:
    """Each role's cookie on this stack, named by the port the control API listens on."""
    server = scope.get("server")
    port = server[1] if server else 0
    return {
        Role.INSTRUCTOR: f"blackout_control_{port}",
        Role.TEAM: f"blackout_team_{port}",
        Role.WATCH: f"blackout_watch_{port}",
    }


def may(role: Role, method: str, path: str) -> bool:
    """Whether ``role`` reaches this route (the instructor reaches every one)."""
    if role is Role.INSTRUCTOR:
        return True
    routes = TEAM_ROUTES if role is Role.TEAM else WATCH_ROUTES
    return any(method in methods and pattern.fullmatch(path) for methods, pattern in routes)


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


def role_of(request: Request) -> Role:
    """The role the gate found for this request (the control app's middleware sets it before any route)."""
    role: Role = request.scope["state"]["role"]
    return role


def _same(given: str, secret: str) -> bool:
    return hmac.compare_digest(given.encode(), secret.encode())


def team_schema(openapi: dict[str, Any]) -> dict[str, Any]:
    """The app's OpenAPI document cut to what a team's code reaches (TEAM_ROUTES): a team cannot read
    /openapi.json, so docs/team-api.json is this, kept in sync by tests/chaos/workshop/test_auth.py."""
    paths = {
        path: {method: op for method, op in ops.items() if may(Role.TEAM, method.upper(), path)}
        for path, ops in openapi["paths"].items()
    }
    kept = {path: ops for path, ops in paths.items() if ops}
    used = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(kept)))
    schemas = openapi.get("components", {}).get("schemas", {})
    while True:  # the models the kept routes use, and the ones those use
        more = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps([schemas[n] for n in used]))) - used
        if not more:
            break
        used |= more
    return {
        **{k: v for k, v in openapi.items() if k not in ("paths", "components")},
        "info": {**openapi["info"], "title": "blackout-control: the team API"},
        "paths": kept,
        "components": {
            "schemas": {n: schemas[n] for n in sorted(used)},
            "securitySchemes": {
                "team code": {"type": "http", "scheme": "bearer", "description": "the code of the team's link"}
            },
        },
        "security": [{"team code": []}],
    }
