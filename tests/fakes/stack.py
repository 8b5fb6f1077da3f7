"""Build one service's app for tests, its dependencies answered by an httpx.MockTransport."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from services.common.perimeter import SERVICE_KEY_HEADER
from services.common.policy import Profile
from services.common.settings import ServiceSettings

SECRET = "test-secret"  # signs users' tokens
ADMIN_SECRET = "test-admin-secret"  # guards /admin/*
ADMIN = {"Authorization": f"Bearer {ADMIN_SECRET}"}
SERVICE_KEY = "test-service-key"  # the stack's service credential (internal routes)
PEER = {SERVICE_KEY_HEADER: SERVICE_KEY}  # what a peer service sends
LOCAL = "http://127.0.0.1"  # a Host the services accept (TestClient's default, testserver, is refused)
PROJECT = Path(__file__).resolve().parents[2]
Handler = Callable[[httpx.Request], httpx.Response]


def settings_for(
    service: str, tmp_path: Path, deps: dict[str, list[str]] | None = None, profile: str | None = None
) -> ServiceSettings:
    return ServiceSettings(
        service=service,
        instance=f"{service}-test",
        dc="dc-test",
        port=1,
        data_dir=tmp_path,
        dependencies=deps or {},
        token_secret=SECRET,
        admin_secret=ADMIN_SECRET,
        service_key=SERVICE_KEY,
        profile=PROJECT / "profiles" / f"{profile}.yaml" if profile else None,
    )


def client_for(
    service: str,
    tmp_path: Path,
    handler: Handler | None = None,
    deps: dict[str, list[str]] | None = None,
    profile: str | None = None,
) -> TestClient:
    """A TestClient for `service`, calling as a peer service would (with the service credential); every
    outgoing call goes to `handler` (default: 503 for everything)."""
    transport = httpx.MockTransport(handler or (lambda request: httpx.Response(503)))
    module = importlib.import_module(f"services.{service}.app")
    app = module.create_app(settings_for(service, tmp_path, deps, profile), transport=transport)
    return TestClient(app, base_url=LOCAL, headers=PEER)


def swap_profile(client: TestClient, **changes: object) -> None:
    """Change the running profile in place (what a live switch does), e.g. fallbacks=..."""
    holder = client.app.state.ctx.profiles
    holder.swap(Profile.model_validate({**holder.current.model_dump(), **changes}))
