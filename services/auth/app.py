"""auth: the user store. Logs users in (scrypt-hashed passwords) and verifies signed, expiring tokens."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request

from services.auth.accounts import seed_rows
from services.auth.api import LOGIN, VERIFY, Identity, LoginRequest, LoginResponse
from services.auth.make_demo_users import DEMO_USERS_FILE
from services.common.app import build_context, create_service_app
from services.common.db import Database
from services.common.lockout import LOCKOUT_HEADER, FailureLimiter
from services.common.perimeter import INTERNAL
from services.common.settings import ServiceSettings
from services.common.tokens import TokenError, bearer, check_password, dummy_like, issue_token, verify_token

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'creator')),
    password_hash TEXT NOT NULL
);
"""
# Per account: after this many wrong passwords within the window, logins to it answer 429 until the oldest
# failure leaves the window (the correct password too: else guessing just goes on). A correct load test never
# fails a login, so never trips it; an attacker can lock an account for at most the window.
LOGIN_MAX_FAILURES, LOGIN_WINDOW_S = 5, 300.0


class UserStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def seed(self, demo_users_file: Path) -> None:
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO users (user_id, role, password_hash) VALUES (?, ?, ?)",
                seed_rows(demo_users_file),
            )

    def find(self, user_id: str) -> tuple[str, str] | None:
        rows = self.db.query("SELECT role, password_hash FROM users WHERE user_id = ?", (user_id,))
        return (rows[0]["role"], rows[0]["password_hash"]) if rows else None

    def any_hash(self) -> str:
        return self.db.query("SELECT password_hash FROM users LIMIT 1")[0]["password_hash"]


router = APIRouter(tags=["auth"])


def store(request: Request) -> UserStore:
    return request.app.state.users


# Both routes are the gateway's to call (users log in through it): the service credential is required.
@router.post(LOGIN, response_model=LoginResponse, dependencies=INTERNAL)
def login(body: LoginRequest, request: Request, users: UserStore = Depends(store)) -> LoginResponse:
    # A sync endpoint: scrypt is CPU-bound and runs in the threadpool, not on the event loop.
    settings: ServiceSettings = request.app.state.ctx.settings
    lockout: FailureLimiter = request.app.state.lockout
    wait = lockout.retry_after(body.username)
    if wait:
        raise HTTPException(
            status_code=429,
            detail="too many failed logins for this account: try again later",
            headers={"Retry-After": str(wait), LOCKOUT_HEADER: "account"},
        )
    found = users.find(body.username)
    # An unknown user's password is checked against a dummy hash of the same cost: the time taken must not
    # tell which accounts exist.
    matches = check_password(body.password, found[1] if found else request.app.state.dummy_hash)
    if found is None or not matches:
        lockout.failed(body.username)
        raise HTTPException(status_code=401, detail="unknown user or wrong password")
    token, expires = issue_token(body.username, found[0], settings.secret_bytes(), settings.token_ttl_s)
    return LoginResponse(token=token, user_id=body.username, role=found[0], expires_at=expires)


@router.get(VERIFY, response_model=Identity, dependencies=INTERNAL)
async def verify(request: Request, authorization: str | None = Header(None)) -> Identity:
    settings: ServiceSettings = request.app.state.ctx.settings
    try:
        claims = verify_token(bearer(authorization), settings.secret_bytes())
    except TokenError as exc:
        raise HTTPException(status_code=401, detail=str(exc)) from None
    return Identity(user_id=claims["sub"], role=claims["role"], expires_at=claims["exp"])


def create_app(settings: ServiceSettings, transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    settings.secret_bytes()  # fail fast: auth cannot sign without it
    ctx = build_context(settings, transport)
    db = Database(settings.data_dir / f"{settings.instance}.sqlite3", SCHEMA)
    users = UserStore(db)
    users.seed(DEMO_USERS_FILE)
    ctx.closers.append(db.close)
    app = create_service_app(ctx, router)
    app.state.users = users
    app.state.dummy_hash = dummy_like(users.any_hash())
    app.state.lockout = FailureLimiter(LOGIN_MAX_FAILURES, LOGIN_WINDOW_S)
    return app
