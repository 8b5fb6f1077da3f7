"""The control API against a runtime that records what it was asked (no processes)."""
from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient

from chaos.control import create_control_app
from chaos.runtime.base import PowerEvent, Runtime, RuntimeError_
from services.common.errors import ConfigError
from services.common.policy import Profile


class RecordingRuntime(Runtime):
    def __init__(self) -> None:
        self.powered = {"dc-east": True, "dc-west": True}
        self.profiles: list[str] = []

    def up(self) -> None: ...

    def down(self) -> None: ...

    def _power(self, dc: str, on: bool) -> PowerEvent:
        if dc not in self.powered:
            raise ConfigError(f"data center '{dc}'", "unknown; known data centers: dc-east, dc-west")
        if self.powered[dc] == on:
            raise RuntimeError_(f"{dc} is already powered {'on' if on else 'off'}")
        self.powered[dc] = on
        return PowerEvent(dc, "on" if on else "off", ("a",), 0.01)

    def power_off(self, dc: str) -> PowerEvent:
        return self._power(dc, False)

    def power_on(self, dc: str) -> PowerEvent:
        return self._power(dc, True)

    def switch_profile(self, profile: Profile) -> dict[str, str]:
        self.profiles.append(profile.name)
        return {"gateway-west": "ok"}

    def status(self) -> dict[str, dict]:
        return {"gateway-west": {"dc": "dc-west", "state": "running"}}


@pytest.fixture
def control():
    runtime, shutdown = RecordingRuntime(), threading.Event()
    client = TestClient(create_control_app(runtime, "s3cret", shutdown))
    client.headers["Authorization"] = "Bearer s3cret"
    return client, runtime, shutdown


def test_every_action_needs_the_token(control):
    client, runtime, _ = control
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        assert client.post("/power/dc-east/off", headers=headers or {"Authorization": ""}).status_code == 401
    assert runtime.powered["dc-east"] is True


def test_power_off_and_on(control):
    client, runtime, _ = control
    assert client.post("/power/dc-east/off").json()["action"] == "off"
    assert runtime.powered["dc-east"] is False
    assert client.post("/power/dc-east/off").status_code == 409
    assert client.post("/power/dc-east/on").status_code == 200


def test_unknown_data_centers_and_actions_get_404_with_the_known_ones(control):
    client, _, _ = control
    answer = client.post("/power/dc-north/off")
    assert answer.status_code == 404 and "dc-east, dc-west" in answer.json()["detail"]
    assert client.post("/power/dc-east/sideways").status_code == 404


def test_profile_switch_validates_and_reaches_the_runtime(control):
    client, runtime, _ = control
    assert client.put("/profile", json={"name": "resilient"}).json()["instances"] == {"gateway-west": "ok"}
    assert runtime.profiles == ["resilient"]
    bad = client.put("/profile", json={"name": "x", "default": {"timeout_s": -1}})
    assert bad.status_code == 422 and "default.timeout_s" in bad.json()["detail"]
    assert runtime.profiles == ["resilient"]


def test_shutdown_sets_the_event(control):
    client, _, shutdown = control
    assert client.post("/shutdown").status_code == 200
    assert shutdown.is_set()
