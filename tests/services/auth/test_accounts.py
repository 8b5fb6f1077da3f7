"""Load-test accounts: derived from the user number, every one known to auth, passwords stored hashed."""

from __future__ import annotations

from fakes.stack import client_for

from services.auth.accounts import seed_rows
from services.auth.make_demo_users import DEMO_USERS_FILE
from services.common.accounts import MAX_USERS, MAX_VIEWERS, account, is_account
from services.common.seed import DEMO_PASSWORD


def test_accounts_are_deterministic_spread_and_distinct_for_viewers() -> None:
    accounts = [account(i) for i in range(MAX_USERS)]
    assert accounts == [account(i) for i in range(MAX_USERS)]
    viewers = [u for u, role in accounts if role == "viewer"]
    assert len(viewers) == len(set(viewers)) == MAX_VIEWERS
    assert 13 <= sum(role == "creator" for _, role in accounts[:100]) <= 17
    assert {i % 2 for i, (_, role) in enumerate(accounts[:40]) if role == "creator"} == {0, 1}  # both DCs
    assert all(is_account(u) for u, _ in accounts)
    assert not is_account("viewer-1") and not is_account("creator-031") and not is_account("admin-0001")


def test_every_account_is_seeded_with_a_scrypt_hash() -> None:
    rows = seed_rows(DEMO_USERS_FILE)
    names = {name for name, _, _ in rows}
    assert {account(i)[0] for i in range(MAX_USERS)} <= names
    assert all(h.startswith("scrypt$") and DEMO_PASSWORD not in h for _, _, h in rows)


def test_a_load_viewer_logs_in_and_a_wrong_password_is_refused(tmp_path) -> None:
    last_viewer = f"viewer-{MAX_VIEWERS:04d}"
    with client_for("auth", tmp_path) as client:
        ok = client.post("/login", json={"username": last_viewer, "password": DEMO_PASSWORD})
        assert ok.status_code == 200 and ok.json()["role"] == "viewer"
        assert client.post("/login", json={"username": last_viewer, "password": "nope"}).status_code == 401
