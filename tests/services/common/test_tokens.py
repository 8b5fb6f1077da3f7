from __future__ import annotations

import pytest

from services.common.tokens import TokenError, check_password, hash_password, issue_token, verify_token


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
