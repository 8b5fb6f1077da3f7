"""The admin secret is not the token secret: neither opens what the other guards."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes.stack import ADMIN, ADMIN_SECRET, SECRET, client_for

from services.common.errors import ConfigError
from services.common.settings import load_settings
from services.common.tokens import issue_token


def test_the_token_secret_no_longer_opens_admin_routes(tmp_path: Path):
    with client_for("auth", tmp_path) as auth:
        as_token_secret = {"Authorization": f"Bearer {SECRET}"}
        assert auth.get("/admin/profile", headers=as_token_secret).status_code == 401
        assert auth.get("/admin/faults", headers=as_token_secret).status_code == 401
        assert auth.get("/admin/profile", headers=ADMIN).status_code == 200
        assert auth.get("/admin/faults", headers=ADMIN).status_code == 200


def test_a_user_token_signed_with_the_admin_secret_is_rejected(tmp_path: Path):
    with client_for("auth", tmp_path) as auth:
        minted, _ = issue_token("creator-007", "creator", ADMIN_SECRET.encode(), 3600)
        assert auth.get("/verify", headers={"Authorization": f"Bearer {minted}"}).status_code == 401
        genuine, _ = issue_token("creator-007", "creator", SECRET.encode(), 3600)
        assert auth.get("/verify", headers={"Authorization": f"Bearer {genuine}"}).status_code == 200


def test_the_admin_secret_comes_from_its_own_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    env = {
        "SERVICE": "auth",
        "INSTANCE": "auth-1",
        "DC": "dc1",
        "PORT": "1",
        "DATA_DIR": str(tmp_path),
        "TOKEN_SECRET": "t0ken",
        "ADMIN_SECRET": "adm1n",
    }
    for name, value in env.items():
        monkeypatch.setenv(f"BLACKOUT_{name}", value)
    settings = load_settings()
    assert settings.admin_secret is not None and settings.admin_secret.get_secret_value() == "adm1n"
    assert settings.secret_bytes() == b"t0ken"


def test_an_admin_secret_equal_to_the_token_secret_is_refused(tmp_path: Path):
    with pytest.raises(ConfigError) as info:
        load_settings(
            service="auth",
            instance="auth-1",
            dc="dc1",
            port=1,
            data_dir=tmp_path,
            token_secret="same",
            admin_secret="same",
        )
    assert info.value.source == "BLACKOUT_ADMIN_SECRET"
