"""The control API against a runtime that records what it was asked (no processes)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from fakes.runtime import RecordingRuntime
from fastapi.testclient import TestClient

from chaos.control_api import ControlServer, create_control_app, room_socket
from chaos.control_client import ControlClient
from chaos.controller import Controller
from chaos.events import EventBus
from chaos.faults.injector import FaultInjector
from chaos.journal import Journal
from services.common.errors import BlackoutError, UsageError
from services.common.policy import Profile

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def setup(tmp_path):
    runtime, shutdown, bus = RecordingRuntime(), threading.Event(), EventBus()
    journal = Journal(tmp_path, bus)
    injector = FaultInjector(runtime, journal, random.Random(1), profile=Profile(name="naive"))
    controller = Controller(runtime, injector, journal, bus, tmp_path)
    client = TestClient(create_control_app(controller, "s3cret", shutdown))
    client.headers["Authorization"] = "Bearer s3cret"
    return client, runtime, shutdown, controller


@pytest.fixture
def control(setup):
    client, runtime, shutdown, _ = setup
    return client, runtime, shutdown


def test_every_action_needs_the_token(control):
    client, runtime, _ = control
    calls = [
        ("post", "/power/dc-east/off"),
        ("get", "/status"),
        ("post", "/faults"),
        ("post", "/panic"),
        ("get", "/scenarios"),
        ("post", "/runs"),
        ("get", "/events"),
        ("post", "/shutdown"),
    ]
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong"}):
        for method, path in calls:
            assert getattr(client, method)(path, headers=headers).status_code == 401, path
    assert runtime.power["dc-east"] is True


def test_the_bearer_scheme_is_read_case_insensitively_and_a_malformed_header_is_a_401(control):
    client, _, _ = control
    assert client.get("/status", headers={"Authorization": "bearer s3cret"}).status_code == 200
    for header in ("Bearer", "Basic s3cret", "s3cret", "bearer  "):
        answer = client.get("/status", headers={"Authorization": header})
        assert answer.status_code == 401, header


def test_power_off_and_on(control):
    client, runtime, _ = control
    off = client.post("/power/dc-east/off").json()
    assert off["action"] == "off" and off["fault_id"] == "power-off-1"
    assert runtime.power["dc-east"] is False
    assert client.post("/power/dc-east/off").status_code == 409
    assert client.get("/faults").json()[0]["id"] == "power-off-1"
    assert client.post("/power/dc-east/on").status_code == 200
    assert client.get("/faults").json() == []  # power-on settles the power-off


def test_unknown_data_centers_and_actions_get_404_with_the_known_ones(control):
    client, _, _ = control
    answer = client.post("/power/dc-north/off")
    assert answer.status_code == 404 and "dc-east, dc-west" in answer.json()["detail"]
    assert client.post("/power/dc-east/sideways").status_code == 404


def test_faults_are_validated_naming_the_field(control):
    client, _, _ = control
    bad = client.post("/faults", json={"power_off": "dc-east", "for": "soon"})
    assert bad.status_code == 422 and "body.for" in bad.json()["detail"]
    unknown = client.post("/faults", json={"meteor": "dc-east"})
    assert unknown.status_code == 422 and "power_off" in unknown.json()["detail"]  # lists the actions
    assert client.post("/faults", json=["power_off"]).status_code == 422
    missing = client.post("/faults", json={"kill_instance": "gateway-mars"})
    assert missing.status_code == 404 and "gateway-west" in missing.json()["detail"]  # lists what exists
    link = client.post("/faults", json={"latency": {"from": "dc-west", "to": "dc-east", "ms": 100}})
    assert link.status_code == 404 and "recording runtime cannot" in link.json()["detail"]


def test_a_fault_is_injected_listed_and_removed(control):
    client, runtime, _ = control
    answer = client.post("/faults", json={"kill_instance": "recommender-west", "id": "rec"})
    assert answer.status_code == 200 and answer.json()["id"] == "rec"
    assert runtime.killed == {"recommender-west"}
    assert client.post("/faults", json={"kill_instance": "recommender-east", "id": "rec"}).status_code == 409
    assert client.delete("/faults/rec").status_code == 200
    assert runtime.killed == set()
    gone = client.delete("/faults/rec")
    assert gone.status_code == 404 and "active faults: none" in gone.json()["detail"]


def test_panic_removes_every_fault_and_restores_power(control):
    client, runtime, _ = control
    client.post("/power/dc-east/off")
    client.post("/faults", json={"kill_instance": "gateway-west"})
    answer = client.post("/panic").json()
    assert {r["status"] for r in answer["rollbacks"]} == {"succeeded"} and len(answer["rollbacks"]) == 2
    assert answer["power"] == {"dc-east": True, "dc-west": True}
    assert runtime.killed == set() and client.get("/faults").json() == []


def test_profile_switch_validates_and_reaches_the_runtime(control):
    client, runtime, _ = control
    assert client.put("/profile", json={"name": "resilient"}).json()["instances"] == {"gateway-west": "ok"}
    assert runtime.profiles == ["resilient"]
    bad = client.put("/profile", json={"name": "x", "default": {"timeout_s": -1}})
    assert bad.status_code == 422 and "default.timeout_s" in bad.json()["detail"]
    assert runtime.profiles == ["resilient"]


def test_scenarios_are_listed_with_their_purpose(control):
    client, _, _ = control
    names = {s["name"]: s for s in client.get("/scenarios").json()}
    assert {"dc-power-loss", "partition", "retry-storm", "single-instance-kill"} <= set(names)
    assert names["dc-power-loss"]["learn"]
    # users as a number, or as a fraction of the calibrated capacity (retry-storm)
    assert names["retry-storm"]["users"] is None and names["retry-storm"]["capacity"] > 0  # sized to the machine


def test_a_run_request_is_validated(control):
    client, _, _ = control
    assert client.post("/runs", json={"scenario": "dc-power-loss", "users": 0}).status_code == 422
    assert client.post("/runs", json={"scenario": "x", "colour": "red"}).status_code == 422


def test_shutdown_sets_the_event(control):
    client, _, shutdown = control
    assert client.post("/shutdown").status_code == 200
    assert shutdown.is_set()


def test_the_control_file_appears_only_once_the_api_answers(setup, tmp_path):
    _, _, _, controller = setup
    server = ControlServer(controller, tmp_path, tmp_path)
    server.start()
    try:
        info = json.loads((tmp_path / ".control.json").read_text())
        assert info["url"].startswith("http://127.0.0.1:")
        assert ControlClient(tmp_path).call("GET", "/status")["power"] == {"dc-east": True, "dc-west": True}
        with pytest.raises(UsageError, match="dc-east, dc-west"):
            ControlClient(tmp_path).call("POST", "/power/dc-x/off")
    finally:
        server.stop()
    assert not (tmp_path / ".control.json").exists()


def test_the_rooms_socket_refuses_the_control_token_and_the_control_api_stays_on_the_loopback(setup, tmp_path):
    _, _, _, controller = setup
    server = ControlServer(controller, tmp_path, tmp_path, room_bind="127.0.0.1")  # a LAN address in a real room
    server.start()
    try:
        info = json.loads((tmp_path / ".control.json").read_text())
        assert info["room_url"] != info["url"] and ControlClient(tmp_path).room_url == info["room_url"]
        auth = {"Authorization": f"Bearer {info['token']}"}
        assert httpx.get(info["url"] + "/status", headers=auth).status_code == 200
        for path in ("/status", "/faults", "/room?token=" + info["token"]):
            refused = httpx.get(info["room_url"] + path, headers=auth)
            assert refused.status_code == 403 and "team rooms' address" in refused.json()["detail"], path
        assert httpx.post(info["room_url"] + "/shutdown", headers=auth).status_code == 403
        assert httpx.get(info["room_url"] + "/status").status_code == 401
    finally:
        server.stop()
    with pytest.raises(httpx.ConnectError):  # the rooms' socket closed with the server
        httpx.get(info["room_url"] + "/room")


def test_a_room_address_that_is_no_ip_or_not_this_machines_is_refused_by_name():
    with pytest.raises(UsageError, match="nope: not an IP address"):
        room_socket("nope")
    with pytest.raises(UsageError, match="192.0.2.1: cannot listen there"):  # TEST-NET-1: nobody's address
        room_socket("192.0.2.1")


def test_a_server_that_never_started_stops_cleanly(setup, tmp_path):
    _, _, _, controller = setup
    ControlServer(controller, tmp_path, tmp_path).stop()  # no traceback from joining a thread never started


def test_a_client_reads_error_bodies_that_are_not_json(tmp_path, monkeypatch):
    import httpx

    (tmp_path / ".control.json").write_text(
        json.dumps({"url": "http://127.0.0.1:1", "token": "t", "pid": 1, "run_dir": "x"})
    )
    monkeypatch.setattr(httpx, "request", lambda *a, **k: httpx.Response(500, text="<html>oops</html>"))
    with pytest.raises(BlackoutError, match="oops"):
        ControlClient(tmp_path).call("GET", "/status")


@pytest.fixture
def secret_yaml(tmp_path):
    """A file outside the library whose lines a YAML error would quote."""
    path = tmp_path.parent / f"{tmp_path.name}-secret.yaml"
    path.write_text("password: hunter2: x\n")  # not valid YAML: the error points at this line
    yield path
    path.unlink()


def test_over_http_files_are_named_from_the_library_never_by_path(control, secret_yaml, tmp_path):
    client, runtime, _ = control
    escape = client.put("/profile", json={"name": "x/../../../../../elsewhere/pwned"})
    assert escape.status_code == 422 and "name" in escape.json()["detail"]
    assert runtime.profiles == []  # the runtime, which names a file after the profile, was never asked
    for body in (
        {"scenario": str(secret_yaml)},
        {"scenario": "../" + secret_yaml.stem},
        {"scenario": "dc-power-loss", "profile": str(secret_yaml)},
    ):
        refused = client.post("/runs", json=body)
        assert refused.status_code == 422, body
        assert "hunter2" not in refused.text and "hunter2" not in client.get("/runs/current").text
    unknown = client.post("/runs", json={"scenario": "meteor-strike"})
    assert unknown.status_code == 404 and "dc-power-loss" in unknown.json()["detail"]  # lists the library


def test_a_control_file_is_replaced_whole_and_never_written_through_a_symlink(setup, tmp_path):
    _, _, _, controller = setup
    runs = tmp_path / "runs"
    runs.mkdir(mode=0o755)
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text("{}")
    (runs / ".control.json").symlink_to(elsewhere)  # planted: the token must not land in another file
    server = ControlServer(controller, runs, tmp_path)
    server.start()
    try:
        assert elsewhere.read_text() == "{}"
        control = runs / ".control.json"
        assert not control.is_symlink() and json.loads(control.read_text())["url"] == server.url
        assert oct(control.stat().st_mode & 0o777) == "0o600" and oct(runs.stat().st_mode & 0o777) == "0o700"
        assert [p.name for p in runs.iterdir()] == [".control.json"]  # no temp file left behind
    finally:
        server.stop()
    assert not (runs / ".control.json").exists()


def test_a_second_server_beside_a_live_one_leaves_its_control_file_alone(setup, tmp_path):
    """`blackout run` next to `up`: up's control file must survive the run's start and its end."""
    _, _, _, controller = setup
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # the live `up`
    try:
        up = {"url": "http://127.0.0.1:9", "token": "up's", "pid": sleeper.pid, "run_dir": "up"}
        (tmp_path / ".control.json").write_text(json.dumps(up))
        run = ControlServer(controller, tmp_path, tmp_path)
        run.start()
        assert json.loads((tmp_path / ".control.json").read_text()) == up and not run.published
        assert httpx.get(run.url + "/status", headers={"Authorization": f"Bearer {run.token}"}).status_code == 200
        run.stop()
        assert json.loads((tmp_path / ".control.json").read_text()) == up
    finally:
        sleeper.kill()
        sleeper.wait()
    stale = ControlServer(controller, tmp_path, tmp_path)  # its owner is gone now: a stale file is taken over
    stale.start()
    try:
        assert stale.published and ControlClient(tmp_path).url == stale.url
    finally:
        stale.stop()


def test_a_profile_fault_names_a_profile_of_the_library_never_a_file(control, secret_yaml):
    client, runtime, _ = control
    for spec in (str(secret_yaml), "../" + secret_yaml.stem, "x/../resilient"):
        refused = client.post("/faults", json={"profile": spec})
        assert refused.status_code == 404 and "hunter2" not in refused.text, spec
    assert runtime.profiles == []
    switched = client.post("/faults", json={"profile": "resilient"})
    assert switched.status_code == 200 and runtime.profiles == ["resilient"]
    assert client.delete(f"/faults/{switched.json()['id']}").status_code == 200
    assert runtime.profiles == ["resilient", "naive"]  # the fault's rollback: the profile before it
