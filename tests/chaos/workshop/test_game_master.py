"""The game master's console (chaos/workshop/game_master.py) and the three roles' reach, on the control app against
a runtime that records what it was asked (no processes; the scenario run is replaced by a recorder); the last
test extends a real held round on a real stack. The console in a browser: test_room_browser.py, and with two
teams' stacks: test_teams.py."""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path

import httpx
import pytest
from fakes.runtime import RecordingRuntime
from fakes.scenarios import short_power_loss
from fastapi.testclient import TestClient

from chaos.control_api import ControlServer, create_control_app
from chaos.control_client import CONTROL_FILE
from chaos.controller import Controller
from chaos.engine.fit import TOPOLOGIES
from chaos.engine.run import PROJECT_ROOT
from chaos.engine.scenario import load_scenario
from chaos.events import EventBus
from chaos.faults.injector import FaultInjector
from chaos.journal import EventName, Journal, new_run_dir
from chaos.library import LOCAL_SCENARIOS
from chaos.rundir import LOAD_CONTROL_FILE, REQUESTS_FILE
from chaos.stack import Stack
from chaos.topology import load_topology
from chaos.workshop import probe, teams
from chaos.workshop.config import ExerciseConfig
from chaos.workshop.exercise import ADDABLE, Exercise
from loadtest.control import read_control
from loadtest.requests_reader import read_all
from services.common.policy import Profile, load_profile

ROOM = {"X-Blackout-Room": "1"}
TEAM_MOVES = ("/exercise/detect", "/exercise/act", "/exercise/hint", "/exercise/ack", "/exercise/roles")
CONSOLE = (
    ("GET", "/console"),
    ("GET", "/console/teams"),
    ("GET", "/console/exercise"),
    ("POST", "/console/exercise/hint"),
    ("POST", "/console/teams/red/hint"),
)


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setattr(probe, "_probe", lambda port, by_port: {"healthy": True, "breakers": [], "profile": "naive"})
    runtime, bus = RecordingRuntime(), EventBus()
    team_runs = tmp_path / "teams" / "red"  # a team's stack, as `blackout exercise start --board` lays it out
    team_runs.mkdir(parents=True)
    journal = Journal(team_runs, bus)
    injector = FaultInjector(runtime, journal, random.Random(1), profile=Profile(name="naive"))
    controller = Controller(runtime, injector, journal, bus, team_runs)
    monkeypatch.setattr(controller, "start_run", lambda *args, **kw: {"running": True})
    client = TestClient(create_control_app(controller, "s3cret", threading.Event()), follow_redirects=False)
    return client, controller, runtime, journal


def start(client: TestClient, scenario: str = "dc-power-loss") -> dict:
    started = client.post("/exercise", json={"team": "red", "scenario": scenario, "seed": 2}, headers=BEARER)
    assert started.status_code == 201, started.text
    return started.json()


BEARER = {"Authorization": "Bearer s3cret"}


def test_instructor_team_and_watchers_each_reach_exactly_their_share(setup):
    client, *_ = setup
    started = start(client)
    team = {"Authorization": f"Bearer {started['team_code']}"}
    watch = {"Authorization": f"Bearer {started['watch_code']}"}
    assert started["watch_code"] != started["team_code"]

    # the console is the instructor's: a team's code and a watcher's get a 403 that says so
    for method, path in CONSOLE:
        for who in (team, watch):
            refused = client.request(method, path, headers={**who, **ROOM})
            assert refused.status_code == 403 and "instructor's" in refused.json()["detail"], (method, path)
        assert client.request(method, path, headers=BEARER).status_code == 200, (method, path)

    # watchers: the room and the exercise, read-only; every move is refused, past none of them
    assert client.get("/room/state", headers=watch).json()["role"] == "watch"
    assert client.get("/room/state", headers=watch).json()["faults"] == []
    seen = client.get("/exercise", headers=watch).json()
    assert seen["team"] == "red" and "team_code" not in seen and "watch_code" not in seen and "hidden" not in seen
    for path in (*TEAM_MOVES, "/exercise/status-update", "/exercise/end", "/exercise"):
        refused = client.post(path, json={}, headers=watch)
        assert refused.status_code == 403 and "read-only" in refused.json()["detail"], path
    assert client.get("/status", headers=watch).status_code == 403

    # the team: its roles and status updates are its own (and refused to watchers above)
    roles = client.post("/exercise/roles", json={"incident_commander": "Ada", "communications": "Lin"}, headers=team)
    assert roles.status_code == 200 and roles.json() == {
        "incident_commander": "Ada",
        "ops": "",
        "communications": "Lin",
    }
    assert client.post("/exercise/roles", json={"chef": "x"}, headers=team).status_code == 422
    update = client.post("/exercise/status-update", json={"text": "  investigating dc-east  "}, headers=team)
    assert update.status_code == 200 and update.json()["text"] == "investigating dc-east"
    assert update.json()["by"] == "Lin"
    assert client.post("/exercise/status-update", json={"text": ""}, headers=team).status_code == 422
    assert client.get("/exercise", headers=watch).json()["status_updates"][0]["text"] == "investigating dc-east"


def test_the_watch_link_trades_its_code_for_its_own_cookie(setup):
    client, *_ = setup
    code = start(client)["watch_code"]
    assert client.get("/room?watch=wrong").status_code == 401
    traded = client.get(f"/room?watch={code}")
    assert traded.status_code == 303 and traded.headers["location"] == "/room"
    assert "blackout_watch_80=" in traded.headers["set-cookie"]
    assert client.get("/room/state").json()["role"] == "watch"  # the cookie, from now on
    assert client.post("/exercise/hint", headers=ROOM).status_code == 403


def test_the_console_shows_the_hidden_round_and_a_provisional_score(setup):
    client, *_ = setup
    start(client)
    client.post(
        "/exercise/detect",
        json={"symptom": "zero_view_displays", "where": "dc-east", "fault": "power-loss"},
        headers=BEARER,
    )
    teams = client.get("/console/teams", headers=BEARER).json()
    assert teams["fault_kinds"] == list(ADDABLE) and "views-east" in teams["targets"]
    [red] = teams["teams"]
    ex = red["exercise"]
    assert red["stack"] == "red" and red["here"] is True
    assert ex["hidden"]["scenario"] == "dc-power-loss" and ex["hidden"]["targets"] == ["dc-east"]
    assert ex["score"]["provisional"] is True and set(ex["score"]["parts"]) >= {"detect", "localize"}
    assert ex["declarations"][0]["where"] == "dc-east" and ex["watch_code"]
    page = client.get("/console", headers=BEARER)
    assert page.status_code == 200 and "game master" in page.text
    assert client.get("/console/static/console.js", headers=BEARER).status_code == 200
    assert client.get("/console/static/../game_master.py", headers=BEARER).status_code == 404


def test_the_console_gives_a_hint_that_costs_what_the_teams_own_would(setup):
    client, *_ = setup
    start(client, "brownout")
    given = client.post("/console/teams/red/hint", headers=BEARER)
    assert given.status_code == 200 and given.json()["by"] == "instructor" and given.json()["cost"] == 25
    assert given.json()["text"] == load_scenario("brownout").card.hints[0]
    view = client.get("/exercise", headers=BEARER).json()
    assert [h["by"] for h in view["hints"]] == ["instructor"] and view["next_hint_cost"] == 50
    ended = client.post("/console/teams/red/end", headers=BEARER).json()
    assert ended["state"] == "ended" and ended["score"]["penalties"]["hints"] == 25


def test_a_second_fault_goes_through_the_controllers_path_and_a_bad_one_is_refused(setup):
    client, controller, runtime, journal = setup
    start(client)
    for body, status, words in (
        ({"kind": "gremlins", "target": "views-east"}, 422, "fault kinds: power_off"),
        ({"kind": "drain", "target": "dc-east"}, 422, "no fault kind"),  # a lever is the team's, not a fault
        ({"kind": "kill_instance", "target": "views-mars"}, 404, "views-mars"),
        ({"kind": "kill_instance"}, 422, "target"),
    ):
        refused = client.post("/console/teams/red/fault", json=body, headers=BEARER)
        assert refused.status_code == status and words in refused.text, (body, refused.text)
    assert client.post("/console/teams/blue/hint", headers=BEARER).status_code == 404  # no such stack
    assert client.post("/console/teams/red/panic", headers=BEARER).status_code == 404
    assert runtime.killed == set()

    added = client.post(
        "/console/teams/red/fault", json={"kind": "kill_instance", "target": "views-east"}, headers=BEARER
    )
    assert added.status_code == 200, added.text
    assert runtime.killed == {"views-east"}
    assert any(e["event"] == "fault-on" and "kill_instance" in json.dumps(e) for e in journal.read())
    shown = client.get("/console/exercise", headers=BEARER).json()
    assert [(f["kind"], f["target"]) for f in shown["added_faults"]] == [("kill_instance", "views-east")]
    ended = client.post("/exercise/end", headers=BEARER).json()
    assert ended["state"] == "ended"
    assert runtime.killed == set()  # undone at the end, as the run's own faults are


def test_a_stack_of_the_board_is_listed_and_a_bad_one_says_why(setup, tmp_path):
    client, *_ = setup
    blue = tmp_path / "teams" / "blue"
    blue.mkdir()
    (blue / CONTROL_FILE).write_text(json.dumps({"url": "http://10.0.0.9:8000", "token": "t"}))
    (tmp_path / "teams" / "gone").mkdir()  # no control file: not a stack
    panels = {p["stack"]: p for p in client.get("/console/teams", headers=BEARER).json()["teams"]}
    assert set(panels) == {"blue", "red"}
    assert panels["blue"]["exercise"] is None and "127.0.0.1" in panels["blue"]["why"]
    assert "no exercise" in panels["red"]["why"]
    refused = client.post("/console/teams/blue/hint", headers=BEARER)
    assert refused.status_code == 409 and "127.0.0.1" in refused.json()["detail"]
    # `blackout workshop start` names the round's teams in the board's workshop.json: the console lists those
    seats = {"red": str(tmp_path / "teams" / "red"), "green": str(tmp_path / "teams" / "green")}
    round_ = teams.Round(
        round_id="r1",
        started=time.time(),
        state="playing",
        teams={name: teams.TeamSeat(runs=runs, ports=None, cpus=None) for name, runs in seats.items()},
    )
    teams.write_round(tmp_path / "teams", round_)
    panels = {p["stack"]: p for p in client.get("/console/teams", headers=BEARER).json()["teams"]}
    assert set(panels) == {"green", "red"} and "not up" in panels["green"]["why"]


def test_a_second_fault_is_part_of_the_rounds_truth(setup, tmp_path):
    _, controller, runtime, _ = setup
    exercise = Exercise(controller, ExerciseConfig(team="red", scenario="dc-power-loss", seed=1), tmp_path / "ex")
    before = exercise.truth(onset=time.time())
    assert "recommender-west" not in before.instances and "process-crash" not in before.fault_types
    exercise.add_fault("kill_instance", "recommender-west")
    after = exercise.truth(onset=time.time())
    assert "recommender-west" in after.instances and {"power-loss", "process-crash"} <= after.fault_types
    exercise.close()


def test_the_console_plays_another_teams_stack_over_its_control_api(setup, tmp_path, monkeypatch):
    """Blue's stack is a real control server on 127.0.0.1 (its runtime a recorder): red's console lists blue's
    round from blue's control file and moves it over real HTTP with blue's token, never with its own."""
    client, *_ = setup
    blue_runs = tmp_path / "teams" / "blue"
    blue_runs.mkdir()
    bus, runtime = EventBus(), RecordingRuntime()
    journal = Journal(blue_runs, bus)
    injector = FaultInjector(runtime, journal, random.Random(1), profile=Profile(name="naive"))
    controller = Controller(runtime, injector, journal, bus, blue_runs)
    monkeypatch.setattr(controller, "start_run", lambda *args, **kw: {"running": True})
    server = ControlServer(controller, blue_runs, blue_runs)
    server.start()
    try:
        blue = {"Authorization": f"Bearer {server.token}"}
        started = httpx.post(server.url + "/exercise", json={"team": "blue", "scenario": "partition"}, headers=blue)
        assert started.status_code == 201, started.text
        panels = {p["stack"]: p for p in client.get("/console/teams", headers=BEARER).json()["teams"]}
        assert panels["blue"]["url"] == server.url and panels["blue"]["exercise"]["hidden"]["scenario"] == "partition"
        assert server.token not in json.dumps(panels)  # the console's answer holds no stack's token

        hint = client.post("/console/teams/blue/hint", headers=BEARER)
        assert hint.status_code == 200 and hint.json()["by"] == "instructor"
        bad = client.post("/console/teams/blue/fault", json={"kind": "kill_instance", "target": "x"}, headers=BEARER)
        assert bad.status_code == 404 and bad.json()["detail"].startswith("stack blue: ")
        body = {"kind": "kill_instance", "target": "views-east", "for_s": 30}
        assert client.post("/console/teams/blue/fault", json=body, headers=BEARER).status_code == 200
        assert runtime.killed == {"views-east"}
        assert client.post("/console/teams/blue/end", headers=BEARER).json()["state"] == "ended"
        view = httpx.get(server.url + "/exercise", headers=blue).json()
        assert view["state"] == "ended" and [h["by"] for h in view["hints"]] == ["instructor"]
        assert runtime.killed == set()
    finally:
        server.stop()


def test_only_the_instructor_extends_a_round_and_only_a_running_one(setup):
    client, *_ = setup
    started = start(client)
    for code in (started["team_code"], started["watch_code"]):
        refused = client.post(
            "/console/teams/red/extend", json={"seconds": 30}, headers={"Authorization": f"Bearer {code}", **ROOM}
        )
        assert refused.status_code == 403 and "instructor's" in refused.json()["detail"]
    for body in (None, {"seconds": 0}, {"seconds": 1801}, {"seconds": "soon"}, {"kind": "kill_instance"}):
        refused = client.post("/console/teams/red/extend", json=body, headers=BEARER)
        assert refused.status_code == 422, (body, refused.text)
    assert "an extension needs a body" in client.post("/console/teams/red/extend", headers=BEARER).text
    # the recorder's exercise has no run (start_run is replaced): nothing to extend, and it says so
    idle = client.post("/console/teams/red/extend", json={"seconds": 30}, headers=BEARER)
    assert idle.status_code == 409 and "no run in progress" in idle.json()["detail"]


def run_folder(runs: Path) -> Path | None:
    """The exercise's round's run folder once its users have started (its load control file is written)."""
    found = sorted((runs / "exercise").glob(f"*/*/{LOAD_CONTROL_FILE}"))
    return found[-1].parent if found else None


def test_an_extended_round_ends_later_with_its_users_and_its_held_fault_still_there(tmp_path):
    """A real stack (fragile, naive) serving its control API; a held power loss whose round is 9 s of users. The
    console extends it by 15 s through its HTTP route: locust's own limit moves by 15 s, past the planned end users
    are still served and dc-east is still dark (the hold), and the run ends only after 24 s."""
    runs = tmp_path / "teams" / "red"
    scenario = short_power_loss(runs / LOCAL_SCENARIOS, off_at=2, on_at=4, duration=8, users=4)
    naive = PROJECT_ROOT / "profiles" / "naive.yaml"
    with Stack(runs, serve=True, runs=True) as stack:
        stack.open(new_run_dir(runs, "up-fragile"))
        stack.power_up(load_topology(TOPOLOGIES / "fragile.yaml").with_any_ports(), naive)
        stack.arm(load_profile(naive), random.Random(1))
        assert stack.server is not None
        url, auth = stack.server.url, {"Authorization": f"Bearer {stack.server.token}"}
        config = {"team": "red", "scenario": scenario.stem, "seed": 1, "onset": {"min": 1, "max": 1}, "hold": True}
        started = httpx.post(url + "/exercise", json=config, headers=auth, timeout=60)
        assert started.status_code == 201, started.text
        team = {"Authorization": f"Bearer {started.json()['team_code']}"}
        assert httpx.post(url + "/console/teams/red/extend", json={"seconds": 15}, headers=team).status_code == 403

        run_dir = poll(lambda: run_folder(runs), 120, "the round's users never started")
        limit = read_control(run_dir / LOAD_CONTROL_FILE).max_seconds
        extended = httpx.post(url + "/console/teams/red/extend", json={"seconds": 15}, headers=auth, timeout=30)
        assert extended.status_code == 200, extended.text
        assert extended.json()["extended_s"] == 15 and extended.json()["round_s"] == 24  # 8 s + 1 s onset, + 15
        assert read_control(run_dir / LOAD_CONTROL_FILE).max_seconds == limit + 15
        shown = httpx.get(url + "/console/exercise", headers=auth).json()
        assert shown["round_s"] == 24 and [e["seconds"] for e in shown["extensions"]] == [15]

        journal = Journal(run_dir)
        walked = poll(lambda: [e["t"] for e in journal.read() if e["event"] == EventName.PHASE], 120, "no walk")[0]
        planned_end = walked + 9
        # past the planned end, 10 s before the extended one
        poll(lambda: time.time() > planned_end + 5, 60, "the clock stopped")
        status = httpx.get(url + "/status", headers=auth, timeout=30).json()
        assert status["run"]["running"] and status["run"]["extended_s"] == 15
        assert status["power"]["dc-east"] is False  # the held fault is still there
        poll(lambda: any(r.finished > planned_end + 3 for r in read_all(run_dir / REQUESTS_FILE)), 30, "no users")

        poll(lambda: not httpx.get(url + "/status", headers=auth, timeout=30).json()["run"]["running"], 120, "no end")
        ended_at = next(e["t"] for e in journal.read() if e["event"] == EventName.END)
        assert ended_at >= walked + 24
        ended = httpx.post(url + "/console/teams/red/end", headers=auth, timeout=180)
        assert ended.status_code == 200 and ended.json()["state"] == "ended"


def poll(check, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while not (result := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.3)  # poll interval
    return result
