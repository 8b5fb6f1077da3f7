"""The service app: /admin/profile (auth, validation, live swap) and deadline propagation, over MockTransport."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.stack import LOCAL, SERVICE_KEY
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient

from services.common.accounting import ATTEMPTS_HEADER
from services.common.app import ServiceContext, build_context, context, create_service_app
from services.common.names import DEPENDENCIES
from services.common.resilience import DEADLINE_HEADER
from services.common.settings import ServiceSettings

REPO = Path(__file__).resolve().parents[3]
SECRET = "s3cret-admin"
TOKEN_SECRET = "s3cret-tokens"  # signs users' tokens: must not open the admin routes
ADMIN = {"Authorization": f"Bearer {SECRET}"}

probe = APIRouter()


@probe.get("/probe")
async def probe_views(ctx: ServiceContext = Depends(context)) -> Any:
    return await ctx.deps["views"].get_json("/views/x")


class Views:
    """Two views instances: dc1 answers ``dc1_status``, dc2 always 200. Records every request."""

    def __init__(self) -> None:
        self.dc1_status = 500
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status = self.dc1_status if request.url.host == "views-dc1" else 200
        return httpx.Response(status, json={"from": request.url.host})


def make_app(tmp_path: Path, views: Views, admin_secret: str | None = SECRET, profile: str = "naive") -> FastAPI:
    settings = ServiceSettings(
        service="earnings",
        instance="earnings-dc1",
        dc="dc1",
        port=18003,
        data_dir=tmp_path,
        dependencies={"views": ["http://views-dc1", "http://views-dc2"]},
        token_secret=TOKEN_SECRET,
        admin_secret=admin_secret,
        service_key=SERVICE_KEY,
        profile=REPO / "profiles" / f"{profile}.yaml",
    )
    return create_service_app(build_context(settings, transport=httpx.MockTransport(views)), probe)


@pytest.fixture
def views() -> Views:
    return Views()


@pytest.fixture
def client(tmp_path: Path, views: Views) -> Iterator[TestClient]:
    with TestClient(make_app(tmp_path, views), base_url=LOCAL) as test_client:
        yield test_client


def profile_json(client: TestClient, **changes: Any) -> dict:
    body = client.get("/admin/profile", headers=ADMIN).json()
    for dotted, value in changes.items():
        node = body
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return body


# -- auth ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": SECRET},
        {"Authorization": f"Basic {SECRET}"},
        {"Authorization": f"Bearer {TOKEN_SECRET}"},  # the token secret no longer opens admin routes
    ],
)
def test_admin_routes_need_the_instance_secret(client: TestClient, headers: dict):
    assert client.get("/admin/profile", headers=headers).status_code == 401
    answer = client.put("/admin/profile", headers=headers, json={"name": "x"})
    assert answer.status_code == 401
    assert client.get("/admin/profile", headers=ADMIN).json()["name"] == "naive"  # nothing swapped


def test_admin_is_disabled_without_a_secret(tmp_path: Path, views: Views):
    with TestClient(make_app(tmp_path, views, admin_secret=None), base_url=LOCAL) as test_client:
        answer = test_client.get("/admin/profile", headers={"Authorization": "Bearer "})
        assert answer.status_code == 403
        assert "admin disabled" in answer.json()["detail"]


def test_get_returns_the_current_profile(client: TestClient):
    body = client.get("/admin/profile", headers=ADMIN).json()
    assert body["name"] == "naive"
    assert body["default"]["retries"]["attempts"] == 3


# -- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, field",
    [
        ({"default__timeout_s": -1}, "default.timeout_s"),
        ({"default__retries__attempts": 0}, "default.retries.attempts"),
        ({"default__surprise": True}, "default.surprise"),
        ({"name": ""}, "name"),
    ],
)
def test_an_invalid_profile_is_refused_naming_the_field(client: TestClient, change: dict, field: str):
    answer = client.put("/admin/profile", headers=ADMIN, json=profile_json(client, **change))
    assert answer.status_code == 422
    assert f"'{field}'" in answer.json()["detail"]
    assert client.get("/admin/profile", headers=ADMIN).json()["name"] == "naive"


def test_a_body_that_is_not_json_is_refused(client: TestClient):
    answer = client.put("/admin/profile", headers={**ADMIN, "Content-Type": "application/json"}, content=b"{nope")
    assert answer.status_code == 422


# -- live swap -----------------------------------------------------------------------------------


def test_a_live_swap_changes_the_next_call(client: TestClient, views: Views):
    first = client.get("/probe")
    assert first.status_code == 502  # naive: dc1 only, three attempts
    assert first.headers[ATTEMPTS_HEADER] == "3"
    assert {r.url.host for r in views.requests} == {"views-dc1"}

    swapped = profile_json(client, name="failover", default__failover=True, default__retries__attempts=1)
    answer = client.put("/admin/profile", headers=ADMIN, json=swapped)
    assert answer.status_code == 200
    assert answer.json()["previous"] == "naive"

    second = client.get("/probe")
    assert second.status_code == 200 and second.json() == {"from": "views-dc2"}
    assert second.headers[ATTEMPTS_HEADER] == "2"  # one at dc1, one at dc2
    assert client.get("/healthz").json()["profile"] == "failover"


# -- deadlines through the app -------------------------------------------------------------------


def _sent_deadline(views: Views) -> float:
    return float(views.requests[-1].headers[DEADLINE_HEADER])


def test_the_incoming_deadline_is_propagated_when_the_profile_says_so(tmp_path: Path, views: Views):
    views.dc1_status = 200
    with TestClient(make_app(tmp_path, views, profile="resilient"), base_url=LOCAL) as test_client:
        assert test_client.get("/probe", headers={DEADLINE_HEADER: "800"}).status_code == 200
        assert 0 < _sent_deadline(views) <= 800
        # an exhausted budget is refused at the door: nothing is sent
        sent = len(views.requests)
        assert test_client.get("/probe", headers={DEADLINE_HEADER: "0"}).status_code == 504
        assert len(views.requests) == sent
        # naive does not propagate: the header is neither enforced nor passed on
        naive = profile_json(test_client, name="naive-ish", deadline_propagation=False)
        assert test_client.put("/admin/profile", headers=ADMIN, json=naive).status_code == 200
        assert test_client.get("/probe", headers={DEADLINE_HEADER: "0"}).status_code == 200
        assert DEADLINE_HEADER not in views.requests[-1].headers


# -- the gateway's edge deadline -----------------------------------------------------------------


def _gateway(tmp_path: Path, views: Views, profile: str) -> FastAPI:
    from services.gateway.app import create_app

    settings = ServiceSettings(
        service="gateway",
        instance="gateway-dc1",
        dc="dc1",
        port=18000,
        data_dir=tmp_path,
        dependencies={d: [f"http://{d}-dc1"] for d in DEPENDENCIES},
        token_secret=TOKEN_SECRET,
        admin_secret=SECRET,
        service_key=SERVICE_KEY,
        profile=REPO / "profiles" / f"{profile}.yaml",
    )
    return create_app(settings, transport=httpx.MockTransport(views))


@pytest.mark.parametrize("incoming, most", [(None, 2000), ("500", 500), ("60000", 2000), ("soon", 2000)])
def test_the_gateway_gives_every_user_request_at_most_the_profile_budget(tmp_path, views, incoming, most):
    with TestClient(_gateway(tmp_path, views, "resilient"), base_url=LOCAL) as gateway:
        headers = {DEADLINE_HEADER: incoming} if incoming else {}
        began = time.monotonic()
        gateway.post("/login", json={"username": "u1", "password": "pw"}, headers=headers)
        spent_ms = (time.monotonic() - began) * 1000.0  # the budget passed on is what is left of it: at least this
        assert most - spent_ms - 1 <= _sent_deadline(views) <= most


def test_the_gateway_sets_no_deadline_under_naive(tmp_path, views):
    with TestClient(_gateway(tmp_path, views, "naive"), base_url=LOCAL) as gateway:
        gateway.post("/login", json={"username": "u1", "password": "pw"})
        assert DEADLINE_HEADER not in views.requests[-1].headers
