"""The admin routes the chaos controller drives: /admin/faults on a real service app (auth)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.stack import ADMIN, SECRET, client_for
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

VIEWS = "http://127.0.0.1:8002"


class FakeClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(tmp_path: Path, clock: FakeClock) -> Iterator[TestClient]:
    with client_for("auth", tmp_path) as client:
        client.app.state.ctx.faults.clock = clock
        yield client


def latency(**changes: object) -> dict:
    return {"kind": "latency", "targets": [VIEWS], "latency_ms": 200, "jitter_ms": 50, "lease_s": 10, **changes}


def test_put_list_and_delete(service: TestClient):
    answer = service.put("/admin/faults/slow-views", headers=ADMIN, json=latency())
    assert answer.status_code == 200
    assert answer.json() == {"id": "slow-views", "kind": "latency", "expires_in_s": 10}
    service.put("/admin/faults/cut.1", headers=ADMIN, json={"kind": "blackhole", "lease_s": 30})

    listed = {f["id"]: f for f in service.get("/admin/faults", headers=ADMIN).json()}
    assert set(listed) == {"slow-views", "cut.1"}
    assert listed["slow-views"]["targets"] == [VIEWS] and listed["slow-views"]["expires_in_s"] == 10
    assert listed["cut.1"]["targets"] == [] and listed["cut.1"]["expires_in_s"] == 30

    assert service.delete("/admin/faults/slow-views", headers=ADMIN).json() == {"removed": True}
    assert service.delete("/admin/faults/slow-views", headers=ADMIN).json() == {"removed": False}
    service.put("/admin/faults/b", headers=ADMIN, json={"kind": "brownout", "latency_ms": 1, "lease_s": 5})
    assert service.delete("/admin/faults", headers=ADMIN).json() == {"removed": 2}
    assert service.get("/admin/faults", headers=ADMIN).json() == []


def test_the_lease_runs_out_without_renewal_and_a_put_renews_it(service: TestClient, clock: FakeClock):
    service.put("/admin/faults/f", headers=ADMIN, json=latency(lease_s=10))
    clock.now += 7
    [alive] = service.get("/admin/faults", headers=ADMIN).json()
    assert alive["expires_in_s"] == 3
    renewed = service.put("/admin/faults/f", headers=ADMIN, json=latency(lease_s=10))
    assert renewed.json()["expires_in_s"] == 10
    clock.now += 9  # 16 s after the first PUT
    assert [f["id"] for f in service.get("/admin/faults", headers=ADMIN).json()] == ["f"]
    clock.now += 1
    assert service.get("/admin/faults", headers=ADMIN).json() == []  # a dead controller leaves nothing


def test_the_gauge_and_the_counter_are_on_metrics(service: TestClient):
    def gauge(kind: str) -> float:
        return REGISTRY.get_sample_value("blackout_faults_active", {"kind": kind}) or 0.0

    before = gauge("blackhole")
    service.put("/admin/faults/x", headers=ADMIN, json={"kind": "blackhole", "lease_s": 5})
    service.put("/admin/faults/x", headers=ADMIN, json={"kind": "blackhole", "lease_s": 5})  # a renewal
    assert gauge("blackhole") == before + 1
    text = service.get("/metrics").text
    assert 'blackout_faults_active{kind="blackhole"}' in text
    assert "blackout_fault_injections_total" in text
    service.delete("/admin/faults/x", headers=ADMIN)
    assert gauge("blackhole") == before


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {SECRET}"}])
def test_every_fault_route_needs_the_admin_secret(service: TestClient, headers: dict):
    assert service.put("/admin/faults/f", headers=headers, json=latency()).status_code == 401
    assert service.get("/admin/faults", headers=headers).status_code == 401
    assert service.delete("/admin/faults/f", headers=headers).status_code == 401
    assert service.delete("/admin/faults", headers=headers).status_code == 401
    assert service.get("/admin/faults", headers=ADMIN).json() == []  # nothing was injected


@pytest.mark.parametrize(
    "body, field",
    [
        ({"kind": "flood", "lease_s": 5}, "kind"),
        ({"kind": "latency"}, "lease_s"),
        ({"kind": "latency", "lease_s": 0}, "lease_s"),
        ({"kind": "latency", "lease_s": 3601}, "lease_s"),
        ({"kind": "error", "error_rate": 1.5, "lease_s": 5}, "error_rate"),
        ({"kind": "error", "error_rate": -0.1, "lease_s": 5}, "error_rate"),
        ({"kind": "latency", "latency_ms": -1, "lease_s": 5}, "latency_ms"),
        ({"kind": "latency", "jitter_ms": 600_001, "lease_s": 5}, "jitter_ms"),
        ({"kind": "latency", "targets": ["ftp://127.0.0.1:8002"], "lease_s": 5}, "targets"),
        ({"kind": "latency", "targets": ["127.0.0.1:8002"], "lease_s": 5}, "targets"),
        ({"kind": "latency", "targets": "http://127.0.0.1:8002", "lease_s": 5}, "targets"),
        ({"kind": "latency", "lease_s": 5, "surprise": 1}, "surprise"),
        ({"kind": "latency", "lease_s": 5, "seed": "abc"}, "seed"),
    ],
)
def test_a_bad_body_is_refused_naming_the_field(service: TestClient, body: dict, field: str):
    answer = service.put("/admin/faults/f", headers=ADMIN, json=body)
    assert answer.status_code == 422
    assert f"field '{field}'" in answer.json()["detail"]
    assert service.get("/admin/faults", headers=ADMIN).json() == []


@pytest.mark.parametrize("fault_id", ["Upper", "-leading-dash", "a" * 65, "sp ace"])
def test_a_bad_fault_id_is_refused(service: TestClient, fault_id: str):
    answer = service.put(f"/admin/faults/{fault_id}", headers=ADMIN, json=latency())
    assert answer.status_code == 422
    assert "field 'fault_id'" in answer.json()["detail"]


def test_a_body_that_is_not_a_json_object_is_refused(service: TestClient):
    headers = {**ADMIN, "Content-Type": "application/json"}
    assert service.put("/admin/faults/f", headers=headers, content=b"{nope").status_code == 422
    answer = service.put("/admin/faults/f", headers=ADMIN, json=["latency"])
    assert answer.status_code == 422 and "(top level)" in answer.json()["detail"]


def test_a_login_limit_refuses_logins_past_its_rate_with_429_and_retry_after(service: TestClient):
    body = {"kind": "login_limit", "rate_per_s": 1, "lease_s": 10}
    assert service.put("/admin/faults/shed", json=body, headers=ADMIN).status_code == 200
    login = {"username": "viewer-0001", "password": "wrong-password"}
    first, second = service.post("/login", json=login), service.post("/login", json=login)
    assert first.status_code != 429  # the rate passes (here: refused for its password, by auth itself)
    assert second.status_code == 429 and int(second.headers["retry-after"]) >= 1
    assert "rate-limited" in second.json()["detail"]
    assert service.delete("/admin/faults/shed", headers=ADMIN).json() == {"removed": True}
    assert service.post("/login", json=login).status_code != 429
