from __future__ import annotations

import json

import pytest

from services.auth.make_demo_users import DEMO_SCRYPT_N, DEMO_USERS_FILE
from services.common.seed import DEMO_PASSWORD
from services.common.tokens import (
    TokenError,
    bearer,
    check_password,
    dummy_like,
    hash_password,
    issue_token,
    verify_token,
)


def test_token_round_trip_and_expiry():
    token, expires = issue_token("u1", "viewer", b"k", ttl_s=60, now=1000.0)
    assert expires == 1060.0
    assert verify_token(token, b"k", now=1059.0)["sub"] == "u1"
    with pytest.raises(TokenError, match="expired"):
        verify_token(token, b"k", now=1060.0)


def test_tampered_tokens_are_refused():
    token, _ = issue_token("u1", "viewer", b"k", ttl_s=60, now=1000.0)
    body, sig = token.split(".")
    forged_body, _ = issue_token("admin", "creator", b"k", ttl_s=60, now=1000.0)
    for bad in (f"{forged_body.split('.')[0]}.{sig}", f"{body}.x{sig[1:]}", "garbage", ""):
        with pytest.raises(TokenError):
            verify_token(bad, b"k", now=1001.0)


def test_password_hashes_are_salted_and_checked():
    first, second = hash_password("pw"), hash_password("pw")
    assert first != second  # salted
    assert check_password("pw", first) and not check_password("PW", first)
    assert not check_password("pw", "md5$abc")


def test_a_non_ascii_token_is_a_token_error_not_a_crash():
    token, _ = issue_token("u1", "viewer", b"k", ttl_s=60, now=1000.0)
    body, _ = token.split(".")
    for bad in (f"{body}.sig\u00e9", "caf\u00e9.sig", "\u00e9.\u00e9"):
        with pytest.raises(TokenError):
            verify_token(bad, b"k", now=1001.0)


def test_new_hashes_take_owasps_cost_and_older_ones_still_check_at_theirs():
    new = hash_password("pw")
    assert new.split("$")[1:4] == [str(2**17), "8", "1"]  # N=2^17, r=8, p=1: 128 MiB, past OpenSSL's default cap
    assert check_password("pw", new) and not check_password("PW", new)
    demo = json.loads(DEMO_USERS_FILE.read_text())[0]["password_hash"]  # shipped at 2^14 (make_demo_users)
    assert demo.split("$")[1] == str(DEMO_SCRYPT_N) and check_password(DEMO_PASSWORD, demo)
    dummy = dummy_like(demo)
    assert dummy.split("$")[:4] == demo.split("$")[:4] and not check_password(DEMO_PASSWORD, dummy)


@pytest.mark.parametrize("header", ["Bearer abc", "bearer abc", "BEARER abc", "Bearer   abc ", " Bearer abc"])
def test_the_bearer_scheme_is_case_insensitive_and_only_the_token_is_kept(header: str) -> None:
    assert bearer(header) == "abc"


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic abc", "Bearerabc", "abc"])
def test_a_header_without_a_bearer_token_is_a_token_error(header: str | None) -> None:
    with pytest.raises(TokenError, match="missing bearer token"):
        bearer(header)
