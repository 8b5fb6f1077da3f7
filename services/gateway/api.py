"""The gateway's contract, the only API users call: its routes and bodies, for the gateway
(services/gateway/app.py, its fast path services/gateway/hot.py), the load test (loadtest/locustfile.py) and the
tests' fake gateway (tests/fakes/gateway.py). ROUTES maps each user action (services.common.names) to its route."""

from __future__ import annotations

from pydantic import BaseModel, Field

from services.common.ids import Id
from services.common.names import UserAction

LOGIN = "/login"  # POST LoginRequest -> services.auth.api.LoginResponse
FEED = "/feed"  # GET ?limit= -> {user_id, items}: each item with views and views_status
VIEW = "/videos/{video_id}/view"  # POST ViewRequest -> services.views.api.Recorded and the user_id
UPLOAD = "/videos"  # POST UploadRequest -> 201 {video_id, title, creator_id, tags}
EARNINGS = "/me/earnings"  # GET -> services.earnings.api.Statement (views and cents None when unavailable)

FEED_LIMIT, FEED_MAX = 10, 50

ROUTES: dict[UserAction, tuple[str, str]] = {
    "login": ("POST", LOGIN),
    "feed": ("GET", FEED),
    "view": ("POST", VIEW),
    "upload": ("POST", UPLOAD),
    "earnings": ("GET", EARNINGS),
}


class LoginRequest(BaseModel):
    username: Id
    password: str = Field(min_length=1, max_length=256)


class ViewRequest(BaseModel):
    event_id: Id


class UploadRequest(BaseModel):
    title: str = Field(min_length=1, max_length=120)
    tags: list[Id] = Field(default=[], max_length=5)
