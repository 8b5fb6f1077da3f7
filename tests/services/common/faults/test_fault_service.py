"""Faults seen from outside a running service: a partitioned dependency and a browned-out instance."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fakes.stack import ADMIN, SECRET, client_for, swap_profile
from fastapi.testclient import TestClient

from services.common.names import DEPENDENCIES
from services.common.policy import DependencyPolicy
from services.common.tokens import issue_token

DEPS = {name: [f"http://{name}.test:80"] for name in DEPENDENCIES}
TOKEN, _ = issue_token("viewer-0001", "viewer", SECRET.encode(), 3600)
USER = {"Authorization": f"Bearer {TOKEN}"}


class World:
    """auth verifies the token, views records the view; every request that arrives is recorded."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host.removesuffix(".test")
        self.calls.append(f"{host}{request.url.path}")
        if host == "auth":
            return httpx.Response(200, json={"user_id": "viewer-0001", "role": "viewer", "expires_at": 9e9})
        return httpx.Response(200, json={"event_id": "ev-1", "video_id": "video-0001", "counted": True})


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def gateway(tmp_path: Path, world: World) -> Iterator[TestClient]:
    with client_for("gateway", tmp_path, world, DEPS, profile="naive") as client:
        # one quick attempt per call, so a blackhole costs 0.1 s instead of naive's 3 x 1 s
        swap_profile(client, default=DependencyPolicy(timeout_s=0.1))
        yield client


def watch(gateway: TestClient) -> httpx.Response:
    return gateway.post("/videos/video-0001/view", headers=USER, json={"event_id": "ev-1"})


def test_a_blackholed_dependency_makes_the_service_answer_504(gateway: TestClient, world: World):
    fault = {"kind": "blackhole", "targets": [DEPS["views"][0]], "lease_s": 30}
    assert gateway.put("/admin/faults/cut-views", headers=ADMIN, json=fault).status_code == 200
    answer = watch(gateway)
    assert answer.status_code == 504
    assert "timeout" in answer.json()["detail"]
    assert world.calls == ["auth/verify"]  # auth (not targeted) was called; views never received the write
    gateway.delete("/admin/faults/cut-views", headers=ADMIN)
    assert watch(gateway).status_code == 200


def test_an_injected_error_is_a_5xx_from_the_service_and_lifting_the_fault_heals_it(gateway, world):
    fault = {"kind": "error", "targets": [DEPS["views"][0]], "error_rate": 1.0, "lease_s": 30}
    gateway.put("/admin/faults/views-503", headers=ADMIN, json=fault)
    assert watch(gateway).status_code == 502
    assert "views/views" not in world.calls
    gateway.delete("/admin/faults/views-503", headers=ADMIN)
    assert watch(gateway).status_code == 200


@pytest.fixture
def recorded_sleeps(gateway: TestClient) -> list[float]:
    delays: list[float] = []

    async def record(seconds: float) -> None:
        delays.append(seconds)

    gateway.app.state.ctx.faults.sleep = record
    return delays


def test_a_brownout_delays_user_routes_but_never_ops_routes(gateway, recorded_sleeps):
    fault = {"kind": "brownout", "latency_ms": 300, "jitter_ms": 100, "lease_s": 30, "seed": 5}
    gateway.put("/admin/faults/slow", headers=ADMIN, json=fault)
    for path in ("/healthz", "/metrics", "/admin/faults", "/admin/profile"):
        assert gateway.get(path, headers=ADMIN).status_code == 200
    assert recorded_sleeps == []
    assert watch(gateway).status_code == 200  # slow, but answered
    assert gateway.get("/no-such-route").status_code == 404  # every non-ops request is delayed
    assert len(recorded_sleeps) == 2 and all(0.3 <= d <= 0.4 for d in recorded_sleeps)


def test_a_brownout_ignores_targets_and_leaves_outgoing_calls_alone(gateway, world, recorded_sleeps):
    fault = {"kind": "brownout", "latency_ms": 50, "targets": [DEPS["views"][0]], "lease_s": 30}
    gateway.put("/admin/faults/slow", headers=ADMIN, json=fault)
    assert watch(gateway).status_code == 200
    assert recorded_sleeps == [0.05]  # the incoming request only, not the calls to auth and views
    assert world.calls[-2:] == ["auth/verify", "views/views"]


def test_a_real_brownout_is_felt_by_the_caller_and_healthz_stays_fast(gateway):
    gateway.put("/admin/faults/slow", headers=ADMIN, json={"kind": "brownout", "latency_ms": 250, "lease_s": 30})
    started = time.monotonic()
    assert watch(gateway).status_code == 200
    assert time.monotonic() - started >= 0.25
    started = time.monotonic()
    assert gateway.get("/healthz").status_code == 200
    assert time.monotonic() - started < 0.25
