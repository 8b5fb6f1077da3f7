"""Request-scoped faults: the signed header, refused without the admin credential, applied to one request and its
calls downstream, its lineage answered; users without the header see nothing of it."""

from __future__ import annotations

import time

import httpx
import pytest
from fakes.stack import ADMIN_SECRET, SECRET, client_for, settings_for

from services.common.faults.scoped import (
    LINEAGE_HEADER,
    REQUEST_FAULTS_HEADER,
    RefusedFaults,
    ScopedFault,
    sign,
    verify,
)
from services.common.tokens import issue_token
from services.gateway.app import create_app

KEY = ADMIN_SECRET.encode()
DEPS = {name: [f"http://{name}.test"] for name in ("auth", "views", "recommender", "earnings")}
TOKEN, _ = issue_token("creator-001", "creator", SECRET.encode(), 3600)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_a_signed_fault_set_verifies_to_itself():
    faults = [ScopedFault("error", "gateway-east", "http://127.0.0.1:8002"), ScopedFault("crash", "", "http://x:1")]
    assert verify(sign(faults, KEY), KEY) == tuple(faults)


# Each value is made when its test runs: one signed at collection expires in a suite that runs for minutes.
@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: sign([ScopedFault("error", "", "http://a:1")], b"another key"), "bad signature"),
        (lambda: sign([ScopedFault("error", "", "http://a:1")], KEY, now=time.time() - 120), "expired"),
        (lambda: "not-a-signed-value", "bad signature"),
        (lambda: sign([ScopedFault("melt", "", "http://a:1")], KEY), "kind 'melt'"),
    ],
    ids=["another key", "expired", "not signed", "unknown kind"],
)
def test_a_header_not_signed_by_the_admin_or_expired_or_malformed_is_refused(make, reason):
    with pytest.raises(RefusedFaults, match=reason):
        verify(make(), KEY)


def test_an_instance_without_an_admin_secret_refuses_every_fault_set():
    with pytest.raises(RefusedFaults, match="no admin secret"):
        verify(sign([], b""), b"")


class World:
    """The gateway's dependencies: records every call and the fault header it carried."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host.removesuffix(".test")
        self.calls.append((host, request.headers.get(REQUEST_FAULTS_HEADER)))
        if host == "recommender":
            items = [{"video_id": "video-0001", "title": "t", "creator_id": "c", "source": "personalized"}]
            return httpx.Response(200, json={"user_id": "creator-001", "items": items})
        if host == "views":
            return httpx.Response(200, json={"counts": {"video-0001": 42}, "complete": True})
        if host == "auth":
            return httpx.Response(200, json={"user_id": "creator-001", "role": "creator", "expires_at": 9e9})
        return httpx.Response(404)


@pytest.fixture
def world():
    return World()


@pytest.fixture
def gateway(tmp_path, world):
    with client_for("gateway", tmp_path, world, DEPS, profile="naive") as client:
        yield client


def test_a_user_request_without_the_header_is_served_as_always_and_gets_no_lineage(gateway, world):
    response = gateway.get("/feed", headers=AUTH)
    assert response.status_code == 200
    assert response.json()["items"][0]["views"] == 42
    assert LINEAGE_HEADER.lower() not in response.headers
    assert all(header is None for _, header in world.calls)


def test_a_fault_set_not_signed_with_the_admin_secret_is_refused_before_anything_runs(gateway, world):
    forged = sign([ScopedFault("error", "", "http://views.test")], b"the service key is not enough")
    response = gateway.get("/feed", headers={**AUTH, REQUEST_FAULTS_HEADER: forged})
    assert response.status_code == 401
    assert "bad signature" in response.json()["detail"]
    assert world.calls == []  # refused at the door: no call made for it


def test_the_fault_set_acts_on_this_request_only_travels_downstream_and_answers_its_lineage(gateway, world):
    header = sign([ScopedFault("error", "", "http://views.test")], KEY)
    response = gateway.get("/feed", headers={**AUTH, REQUEST_FAULTS_HEADER: header})
    assert response.status_code == 200
    # naive: a view count that cannot be read is shown as 0 (the lie the search's oracle calls broken)
    assert response.json()["items"][0]["views"] == 0
    lineage = response.headers[LINEAGE_HEADER].split(",")
    assert "gateway-test http://auth.test ok" in lineage  # verified afresh: an experiment skips the session cache
    assert "gateway-test http://recommender.test ok" in lineage
    assert lineage.count("gateway-test http://views.test error") == 3  # naive: 3 attempts, each refused
    assert ("views", header) not in world.calls  # the injected error: nothing sent
    assert ("recommender", header) in world.calls  # the header travels with every call made for the request
    # the next user request, without the header, is untouched
    assert gateway.get("/feed", headers=AUTH).json()["items"][0]["views"] == 42


def test_without_an_admin_secret_the_instance_refuses_request_scoped_faults(tmp_path, world):
    from fastapi.testclient import TestClient

    settings = settings_for("gateway", tmp_path, DEPS, "naive").model_copy(update={"admin_secret": None})
    app = create_app(settings, transport=httpx.MockTransport(world))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        header = sign([], KEY)
        response = client.get("/feed", headers={**AUTH, REQUEST_FAULTS_HEADER: header})
    assert response.status_code == 401
    assert "no admin secret" in response.json()["detail"]
