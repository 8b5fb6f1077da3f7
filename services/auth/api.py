"""The auth service's contract: its routes and bodies, for auth (services/auth/app.py) and its one caller, the
gateway (services/gateway/app.py, services/gateway/identity.py)."""

from __future__ import annotations

from pydantic import BaseModel, Field

LOGIN = "/login"
VERIFY = "/verify"  # GET with Authorization: Bearer <token>

USERNAME = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


class LoginRequest(BaseModel):
    username: str = Field(pattern=USERNAME)
    password: str = Field(min_length=1, max_length=256)


class LoginResponse(BaseModel):
    token: str
    user_id: str
    role: str
    expires_at: float


class Identity(BaseModel):
    """What /verify answers for a valid token."""

    user_id: str
    role: str
    expires_at: float
