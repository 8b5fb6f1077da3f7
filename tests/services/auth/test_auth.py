from __future__ import annotations

import time

from fakes.stack import SECRET, client_for

from services.common.accounts import MAX_VIEWERS
from services.common.seed import DEMO_PASSWORD, N_VIEWERS
from services.common.tokens import issue_token


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
