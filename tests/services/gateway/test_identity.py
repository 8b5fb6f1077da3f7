"""Real processes: the gateway's cache of remote verifications never outlives the token it verified."""

from __future__ import annotations

import time

import httpx
import pytest
from fakes.one_dc import running

from services.common.seed import DEMO_PASSWORD

TTL_S = 3  # tokens auth issues in this stack; the naive profile caches a verification for 10 s


def test_a_cached_session_is_refused_once_its_token_expires(tmp_path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("BLACKOUT_TOKEN_TTL_S", str(TTL_S))  # the runtime passes its environment on
    with running(tmp_path) as stack, httpx.Client(timeout=10.0) as client:
        gateway = stack.topology.url("gateway-1")
        login = client.post(gateway + "/login", json={"username": "viewer-0009", "password": DEMO_PASSWORD}).json()
        assert login["expires_at"] - time.time() <= TTL_S
        auth = {"Authorization": f"Bearer {login['token']}"}
        assert client.get(gateway + "/feed", headers=auth).status_code == 200  # verified at auth, now cached
        while time.time() <= login["expires_at"]:  # the token's own deadline (not a readiness wait)
            time.sleep(0.05)
        expired = client.get(gateway + "/feed", headers=auth)
        assert expired.status_code == 401 and "log in again" in expired.json()["detail"]
