from __future__ import annotations

import statistics
import time

import httpx
import pytest
from fakes.one_dc import running
from fakes.stack import SECRET, client_for

from services.auth.app import LOGIN_MAX_FAILURES, LOGIN_WINDOW_S
from services.common.accounts import MAX_VIEWERS
from services.common.perimeter import SERVICE_KEY_HEADER
from services.common.seed import DEMO_PASSWORD, N_VIEWERS
from services.common.tokens import issue_token
from services.gateway.app import LOGIN_CLIENT_MAX_FAILURES


def test_login_returns_a_token_that_verifies(tmp_path):
    with client_for("auth", tmp_path) as client:
        login = client.post("/login", json={"username": "creator-007", "password": DEMO_PASSWORD})
        assert login.status_code == 200
        body = login.json()
        assert body["user_id"] == "creator-007" and body["role"] == "creator"
        assert body["expires_at"] > time.time()
        verified = client.get("/verify", headers={"Authorization": f"Bearer {body['token']}"})
        assert verified.status_code == 200
        assert verified.json()["user_id"] == "creator-007"


def test_wrong_password_and_unknown_user_are_refused(tmp_path):
    with client_for("auth", tmp_path) as client:
        assert client.post("/login", json={"username": "viewer-0001", "password": "nope"}).status_code == 401
        assert client.post("/login", json={"username": "nobody", "password": DEMO_PASSWORD}).status_code == 401


def test_bad_input_gets_422_with_the_field(tmp_path):
    with client_for("auth", tmp_path) as client:
        answer = client.post("/login", json={"username": "Robert'); DROP TABLE users;--", "password": "x"})
        assert answer.status_code == 422
        assert answer.json()["detail"][0]["loc"] == ["body", "username"]
        assert client.post("/login", json={"username": "viewer-0001"}).status_code == 422


def test_forged_expired_and_missing_tokens_are_refused(tmp_path):
    with client_for("auth", tmp_path) as client:
        forged, _ = issue_token("viewer-0001", "viewer", b"another-secret", 60)
        expired, _ = issue_token("viewer-0001", "viewer", SECRET.encode(), 60, now=time.time() - 120)
        for headers in ({"Authorization": f"Bearer {forged}"}, {"Authorization": f"Bearer {expired}"}, {}):
            assert client.get("/verify", headers=headers).status_code == 401


def test_passwords_are_stored_hashed(tmp_path):
    with client_for("auth", tmp_path) as client:
        rows = client.app.state.users.db.query("SELECT password_hash FROM users")
        assert len(rows) == 230 + MAX_VIEWERS - N_VIEWERS  # the demo world and the load-test viewers
        assert all(r["password_hash"].startswith("scrypt$") and DEMO_PASSWORD not in r["password_hash"] for r in rows)


# -- real processes: auth behind the gateway ------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running(tmp_path_factory.mktemp("run")) as runtime:
        yield runtime


def _login(client: httpx.Client, url: str, user: str, password: str) -> httpx.Response:
    return client.post(url + "/login", json={"username": user, "password": password})


def test_a_non_ascii_bearer_token_is_refused_not_a_500(stack):
    token = "Bearer caf\u00e9.sig\u00e9".encode()  # UTF-8 bytes in the header, as a client may send
    with httpx.Client(timeout=10.0) as client:
        auth = client.get(
            stack.topology.url("auth-1") + "/verify",
            headers=[("Authorization", token), (SERVICE_KEY_HEADER, stack.service_key)],
        )
        assert auth.status_code == 401 and auth.json()["detail"]
        assert (
            client.get(stack.topology.url("gateway-1") + "/feed", headers=[("Authorization", token)]).status_code == 401
        )


def test_a_wrong_password_takes_as_long_for_an_unknown_user_as_for_a_known_one(stack):
    """The median of 15 each, interleaved; distinct accounts, so no lockout interferes."""
    auth = stack.topology.url("auth-1")
    known: list[float] = []
    unknown: list[float] = []
    with httpx.Client(timeout=10.0, headers={SERVICE_KEY_HEADER: stack.service_key}) as client:
        for n in range(15):
            for user, times in ((f"viewer-{101 + n:04d}", known), (f"nobody-{n:03d}", unknown)):
                started = time.perf_counter()
                assert _login(client, auth, user, "wrong-password").status_code == 401
                times.append(time.perf_counter() - started)
    known_s, unknown_s = statistics.median(known), statistics.median(unknown)
    assert unknown_s > 0.6 * known_s, f"unknown {unknown_s * 1000:.1f} ms, known {known_s * 1000:.1f} ms"


def test_an_account_is_locked_after_repeated_wrong_passwords(stack):
    gateway = stack.topology.url("gateway-1")
    with httpx.Client(timeout=10.0) as client:
        for _ in range(LOGIN_MAX_FAILURES):
            assert _login(client, gateway, "viewer-0150", "wrong-password").status_code == 401
        locked = _login(client, gateway, "viewer-0150", DEMO_PASSWORD)  # even the right password, now
        assert locked.status_code == 429 and "account" in locked.json()["detail"]
        assert 0 < int(locked.headers["Retry-After"]) <= LOGIN_WINDOW_S
        assert _login(client, gateway, "viewer-0151", DEMO_PASSWORD).status_code == 200  # others are not


def test_a_client_with_many_failed_logins_is_throttled_and_others_are_not(stack):
    gateway = stack.topology.url("gateway-1")
    # a second loopback address: this client's failures must not lock out 127.0.0.1
    other = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(timeout=10.0, transport=other) as client:
        for n in range(LOGIN_CLIENT_MAX_FAILURES):  # each on its own account: the per-account lockout stays out
            assert _login(client, gateway, f"viewer-{200 - n:04d}", "wrong-password").status_code == 401
        throttled = _login(client, gateway, "viewer-0001", DEMO_PASSWORD)
        assert throttled.status_code == 429 and "client" in throttled.json()["detail"]
        assert int(throttled.headers["Retry-After"]) > 0
    with httpx.Client(timeout=10.0) as client:
        assert _login(client, gateway, "viewer-0001", DEMO_PASSWORD).status_code == 200
