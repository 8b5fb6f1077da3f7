"""The gateway's /login: auth's refusals reach the user with auth's reason; outages and our bugs do not look like bad passwords."""

from __future__ import annotations

import json

import httpx
import pytest
from fakes.stack import client_for

from services.common.names import DEPENDENCIES

DEPS = {name: [f"http://{name}.test"] for name in DEPENDENCIES}
GOOD = {"token": "t.s", "user_id": "viewer-0001", "role": "viewer", "expires_at": 9e9}


class Auth:
    """auth's /login answers with whatever the test sets; every other service answers 404."""

    def __init__(self) -> None:
        self.answer = httpx.Response(200, json=GOOD)
        self.bodies: list[dict] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.test" and request.url.path == "/login":
            self.bodies.append(json.loads(request.content))
            return self.answer
        return httpx.Response(404)


@pytest.fixture
def auth():
    return Auth()


@pytest.fixture
def gateway(tmp_path, auth):
    with client_for("gateway", tmp_path, auth, DEPS, profile="resilient") as client:
        yield client


def login(gateway) -> httpx.Response:
    return gateway.post("/login", json={"username": "viewer-0001", "password": "pw"})


def test_a_good_login_returns_auths_token(gateway, auth):
    answer = login(gateway)
    assert answer.status_code == 200 and answer.json() == GOOD
    assert auth.bodies == [{"username": "viewer-0001", "password": "pw"}]


def test_bad_credentials_are_a_401_with_auths_reason(gateway, auth):
    auth.answer = httpx.Response(401, json={"detail": "unknown user or wrong password"})
    answer = login(gateway)
    assert answer.status_code == 401
    assert answer.json()["detail"] == "unknown user or wrong password"
    assert answer.headers["www-authenticate"] == "Bearer"


def test_a_name_auth_finds_malformed_is_a_422_with_the_field(gateway, auth):
    auth.answer = httpx.Response(
        422, json={"detail": [{"loc": ["body", "username"], "msg": "String should match pattern"}]}
    )
    answer = login(gateway)
    assert answer.status_code == 422 and "body.username" in answer.json()["detail"]


def test_a_refusal_that_is_our_fault_is_a_502_not_the_users(gateway, auth):
    auth.answer = httpx.Response(404, json={"detail": "Not Found"})
    answer = login(gateway)
    assert answer.status_code == 502 and "auth refused the request (404: Not Found)" in answer.json()["detail"]


@pytest.mark.parametrize("body", ["<html>oops</html>", json.dumps({"user_id": "viewer-0001"}), "[1, 2]"])
def test_an_answer_without_a_token_is_a_502_not_a_crash(gateway, auth, body):
    auth.answer = httpx.Response(200, text=body, headers={"content-type": "application/json"})
    answer = login(gateway)
    assert answer.status_code == 502 and "login" in answer.json()["detail"]


def test_auth_failing_is_unavailable_not_a_bad_password(gateway, auth):
    auth.answer = httpx.Response(500)
    answer = login(gateway)
    assert answer.status_code == 502 and answer.json()["detail"].startswith("login unavailable")


def test_auth_shedding_load_is_a_503(gateway, auth):
    auth.answer = httpx.Response(429, json={"detail": "overloaded"})
    answer = login(gateway)
    assert answer.status_code == 503 and "shed" in answer.json()["detail"]
