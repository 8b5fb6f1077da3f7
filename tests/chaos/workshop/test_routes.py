"""The control room's and the exercise's routes on the control app, against a runtime that records what it
was asked (no processes; the scenario run is replaced by a recorder, the instance probe by a stub)."""

from __future__ import annotations

import json
import os
import random
import threading
import time

import pytest
from fakes.runtime import RecordingRuntime
from fakes.scenarios import variant
from fastapi.testclient import TestClient

from chaos.control_api import create_control_app
from chaos.controller import Controller
from chaos.engine.scenario import library_names, load_scenario
from chaos.events import EventBus
from chaos.faults.injector import FaultInjector
from chaos.journal import Journal
from chaos.profile_files import PROFILES
from chaos.workshop import pages, probe
from chaos.workshop.config import ExerciseConfig
from chaos.workshop.exercise import Exercise
from chaos.workshop.pager import RUNBOOKS
from chaos.workshop.routes import ASSETS
from services.common.policy import Profile


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setattr(probe, "_probe", lambda port, by_port: {"healthy": True, "breakers": [], "profile": "naive"})
    runtime, bus = RecordingRuntime(), EventBus()
    team_runs = tmp_path / "teams" / "red"  # a team's stack, as `blackout exercise start` lays it out
    team_runs.mkdir(parents=True)
    journal = Journal(team_runs, bus)
    controller = Controller(
        runtime,
        FaultInjector(runtime, journal, random.Random(1), profile=Profile(name="naive")),
        journal,
        bus,
        team_runs,
    )
    runs: list[tuple] = []
    monkeypatch.setattr(controller, "start_run", lambda *args, **kw: runs.append((*args, kw)) or {"running": True})
    client = TestClient(create_control_app(controller, "s3cret", threading.Event()), follow_redirects=False)
    return client, controller, runtime, runs


def test_the_room_trades_a_right_token_for_an_http_only_cookie_and_refuses_a_wrong_one(setup):
    client, *_ = setup
    assert client.get("/room").status_code == 401
    assert client.get("/room?token=wrong").status_code == 401
    assert client.get("/status?token=s3cret").status_code == 401  # a token in the URL opens only the room's door
    traded = client.get("/room?token=s3cret")
    assert traded.status_code == 303 and traded.headers["location"] == "/room"
    cookie = traded.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    page = client.get("/room")  # the client keeps the cookie
    assert page.status_code == 200 and "control room" in page.text
    assert client.get("/room/static/room.js").status_code == 200
    assert client.get("/room/static/../routes.py").status_code == 404
    state = client.get("/room/state").json()
    assert state["power"] == {"dc-east": True, "dc-west": True} and state["exercise"] is None
    assert state["instances"]["views-east"]["healthy"] is True
    client.cookies.set("blackout_control_80", "wrong")  # the test client's server: port 80
    assert client.get("/room/state").status_code == 401


def test_an_exercise_is_played_within_the_instructors_limits(setup, tmp_path):
    client, controller, runtime, runs = setup
    client.headers["Authorization"] = "Bearer s3cret"
    started = client.post(
        "/exercise",
        json={"team": "red", "scenario": "dc-power-loss", "seed": 4, "allow": ["power-on"], "leaderboard": True},
    )
    assert started.status_code == 201, started.text
    assert runs and runs[0][0].endswith("exercise.yaml") and runs[0][2] == 4  # the hidden run, with the seed
    assert "scenario" not in json.dumps(started.json()) and "dc-power-loss" not in json.dumps(started.json())
    assert client.post("/exercise", json={"team": "blue"}).status_code == 409  # one exercise per stack

    declared = {"symptom": "zero_view_displays", "where": "dc-east", "fault": "power-loss", "text": "dc-east is dark"}
    assert client.post("/exercise/detect", json={"text": "dc-east is dark"}).status_code == 422  # not structured
    for bad, field in (
        ({"where": "dc-mars"}, "where"),
        ({"fault": "gremlins"}, "fault"),
        ({"symptom": "x"}, "symptom"),
    ):
        refused = client.post("/exercise/detect", json={**declared, **bad})
        assert refused.status_code == 422 and f"field '{field}'" in refused.json()["detail"], bad
    assert client.post("/exercise/detect", json=declared).status_code == 200
    refused = client.post("/exercise/act", json={"action": "power-off", "target": "dc-west"})
    assert refused.status_code == 403 and "allowed: power-on" in refused.json()["detail"]
    assert runtime.power["dc-west"] is True
    runtime.power["dc-east"] = False  # the hidden fault struck
    assert client.post("/exercise/act", json={"action": "power-on", "target": "dc-east"}).status_code == 200
    assert runtime.power["dc-east"] is True
    assert client.post("/exercise/act", json={"action": "power-on", "target": "dc-mars"}).status_code == 404
    view = client.get("/exercise").json()
    assert [a["status"] for a in view["actions"]] == ["succeeded", "failed"]
    assert view["declarations"][0]["names_target"] is None  # not told until the end

    ended = client.post("/exercise/end").json()
    assert ended["state"] == "ended" and ended["hidden"]["scenario"] == "dc-power-loss"
    assert ended["declarations"][0]["names_target"] is True
    draft = (tmp_path / "teams" / "red" / "exercise").glob("*-red/postmortem-draft.md")
    text = next(draft).read_text()
    assert "team red" in text and "declared: zero_view_displays at dc-east, power-loss" in text
    assert "power-on dc-east (succeeded)" in text
    assert "| fault type | power-loss | power-loss (" in text  # the card beside the team
    assert "Why did dc-west fail although it had power?" in text  # the card's debrief questions
    assert ended["score"]["not_scored"] == {"acknowledge": "no page"} and ended["score"]["out_of"] == 900
    assert "| acknowledge | n/a (no page) |" in text and f"**Score: {ended['score']['points']}** of 900" in text
    assert "red" in (tmp_path / "teams" / "leaderboard.md").read_text()  # the board: every team's folder
    assert client.post("/exercise/detect", json=declared).status_code == 409


def test_while_playing_the_team_does_not_see_the_answer(setup, tmp_path):
    _, controller, *_ = setup
    exercise = Exercise(controller, ExerciseConfig(team="red", scenario="partition", seed=1), tmp_path / "ex")
    now = time.time() + 1
    for hidden in (
        {"t": now, "event": "fault-on", "action": {"partition": ["dc-east", "dc-west"]}},
        {"t": now, "event": "fault-off", "id": "partition-1"},
        {"t": now, "event": "phase", "phase": "outage"},
        {"t": now, "event": "hypothesis", "phase": "baseline", "met": True},
        {"t": now, "event": "recovered", "after_s": 4.0},
        {"t": now, "event": "start", "scenario": "exercise"},
    ):
        assert exercise.for_team(hidden) is None, hidden
    assert exercise.for_team({"t": now, "event": "power-off", "dc": "dc-east"})["dc"] == "dc-east"  # hosts going down
    exercise.result = {"ended": now}  # the end reveals everything
    assert exercise.for_team({"t": now, "event": "phase", "phase": "outage"}) is not None
    exercise.close()


def test_the_exercise_takes_library_names_only_and_never_quotes_a_file(setup, tmp_path):
    client, controller, runtime, runs = setup
    client.headers["Authorization"] = "Bearer s3cret"
    secret = tmp_path / "secret.yaml"  # outside the stack's runs folder and the library
    secret.write_text("password: hunter2: x\n")  # not valid YAML: an error would quote this line
    sneaky = os.path.relpath(tmp_path / "secret", PROFILES)  # profiles/../../..../secret
    for body in ({"scenario": str(secret)}, {"scenario": sneaky}, {"profile": sneaky}):
        refused = client.post("/exercise", json={"team": "red", **body})
        assert refused.status_code == 422 and "hunter2" not in refused.text, body
    assert client.post("/exercise", json={"team": "red", "board": str(tmp_path / "x")}).status_code == 422
    assert runs == []  # nothing started
    started = client.post("/exercise", json={"team": "red", "scenario": "dc-power-loss", "allow": ["profile"]})
    assert started.status_code == 201
    act = client.post("/exercise/act", json={"action": "profile", "target": sneaky})
    assert act.status_code == 404 and "hunter2" not in act.text and "not a path" in act.json()["detail"]
    assert client.post("/exercise/act", json={"action": "profile", "target": "resilient"}).status_code == 200
    assert runtime.profiles == ["resilient"]
    client.post("/exercise/end")


def test_a_stacks_own_scenario_is_found_by_name_in_its_runs_folder(setup):
    client, controller, _, runs = setup
    client.headers["Authorization"] = "Bearer s3cret"
    variant(controller.runs_root / "scenarios", "dc-power-loss")  # <runs>/scenarios/dc-power-loss-short.yaml
    started = client.post("/exercise", json={"team": "red", "scenario": "dc-power-loss-short", "seed": 2})
    assert started.status_code == 201, started.text
    assert client.post("/exercise/end").json()["hidden"]["scenario"] == "dc-power-loss-short"


def test_a_change_with_the_rooms_cookie_needs_the_rooms_own_header(setup):
    client, _, runtime, _ = setup
    client.get("/room?token=s3cret")  # the browser now holds the cookie
    assert client.get("/room/state").status_code == 200  # reading needs only the cookie
    forged = client.post("/power/dc-east/off")  # a page of another port of 127.0.0.1 is the same site
    assert forged.status_code == 403 and "X-Blackout-Room" in forged.json()["detail"]
    cross = client.post("/power/dc-east/off", headers={"X-Blackout-Room": "1", "Sec-Fetch-Site": "same-site"})
    assert cross.status_code == 403
    assert runtime.power["dc-east"] is True
    assert (
        client.post("/power/dc-east/off", headers={"X-Blackout-Room": "1", "Sec-Fetch-Site": "same-origin"}).status_code
        == 200
    )
    assert runtime.power["dc-east"] is False


def test_every_listed_asset_is_served_and_a_missing_one_is_a_404(setup, tmp_path, monkeypatch):
    client, *_ = setup
    client.headers["Authorization"] = "Bearer s3cret"
    for name, kind in ASSETS.items():
        answer = client.get(f"/room/static/{name}")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(kind), name
    html = (pages.STATIC / "room.html").read_text()
    assert all(f"/room/static/{name}" in html for name in ASSETS)  # the page asks for each one
    monkeypatch.setattr(pages, "STATIC", tmp_path)  # an install that lost its files
    missing = client.get("/room/static/room.css")
    assert missing.status_code == 404 and "room.css" in missing.json()["detail"]


def test_both_pages_load_one_shared_script_every_role_reaches_and_it_holds_no_secret(setup):
    client, *_ = setup
    instructor = {"Authorization": "Bearer s3cret"}
    started = client.post("/exercise", json={"team": "red", "scenario": "dc-power-loss"}, headers=instructor).json()
    served = set()
    # each role as a browser has it: its link traded for its cookie (the team's least-privilege code included)
    for link in ("token=s3cret", f"code={started['team_code']}", f"watch={started['watch_code']}"):
        client.cookies.clear()
        assert client.get(f"/room?{link}").status_code == 303
        script = client.get("/room/static/page.js")
        assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript"), link
        served.add(script.text)
    [text] = served
    for helper in ("function $(", "function esc(", "function say(", "async function api(", "function onRefused("):
        assert helper in text, helper
    for page, own in (("room.html", "/room/static/room.js"), ("console.html", "/console/static/console.js")):
        html = (pages.STATIC / page).read_text()
        assert html.index("/room/static/page.js") < html.index(own), page  # loaded first, before the page's own
        script_name = own.rsplit("/", 1)[1]
        mine = (pages.STATIC / script_name).read_text()
        assert not any(helper in mine for helper in ("function $(", "function esc(", "function say(", "function api("))
    assert "s3cret" not in text and started["team_code"] not in text and started["watch_code"] not in text
    assert not [name for name in library_names() if name in text]  # no scenario named
    client.cookies.clear()
    assert client.get("/room/static/page.js").status_code == 401  # no role, no script
    client.post("/exercise/end", headers=instructor)


def test_hints_come_from_the_card_one_rung_at_a_time_and_cost_points(setup):
    client, *_ = setup
    client.headers["Authorization"] = "Bearer s3cret"
    assert client.post("/exercise/hint").status_code == 404  # no exercise yet
    client.post("/exercise", json={"team": "red", "scenario": "brownout", "seed": 1})
    assert client.post("/exercise/ack").status_code == 409  # nothing paged
    taken = [client.post("/exercise/hint").json() for _ in range(3)]
    ladder = load_scenario("brownout").card.hints
    assert [h["text"] for h in taken] == ladder and [h["cost"] for h in taken] == [25, 50, 100]
    over = client.post("/exercise/hint")
    assert over.status_code == 409 and "no hint left" in over.json()["detail"]
    view = client.get("/exercise").json()
    assert view["hints_left"] == 0 and len(view["hints"]) == 3 and "hidden" not in view  # hints, not the answer
    ended = client.post("/exercise/end").json()
    assert ended["score"]["hints"] == 3 and ended["score"]["penalties"]["hints"] == 175


def test_the_runbooks_the_page_links_are_served_and_nothing_else(setup):
    client, *_ = setup
    client.headers["Authorization"] = "Bearer s3cret"
    for name in RUNBOOKS:
        answer = client.get(f"/room/runbooks/{name}")
        assert answer.status_code == 200 and answer.text.startswith(f"# Runbook: {name}"), name
    assert client.get("/room/runbooks/..%2Froutes").status_code == 404
    assert client.get("/room/runbooks/secret").status_code == 404


def test_during_an_exercise_the_instructor_sees_everything_and_the_team_its_share(setup):
    client, controller, runtime, runs = setup
    instructor = {"Authorization": "Bearer s3cret"}
    assert client.post("/faults", json={"kill_instance": "views-east"}, headers=instructor).status_code == 200
    started = client.post("/exercise", json={"team": "red", "scenario": "dc-power-loss"}, headers=instructor).json()
    code = started["team_code"]
    assert runs[0][-1]["runs_root"].parent.name == "exercise"  # the round runs in the instructor's folder
    team = {"Authorization": f"Bearer {code}"}
    assert client.get("/room/state", headers=instructor).json()["faults"]  # the instructor's hand-made fault
    assert client.get("/room/state", headers=team).json()["faults"] == []
    assert client.get("/exercise", headers=instructor).json()["team_code"] == code
    assert "team_code" not in client.get("/exercise", headers=team).json()
    # the instructor's own routes stay the instructor's during the exercise; the team's code reaches none
    assert client.post("/power/dc-west/off", headers=instructor).status_code == 200
    assert client.post("/power/dc-west/on", headers=team).status_code == 403
    assert runtime.power["dc-west"] is False
    client.post("/exercise/end", headers=instructor)
    assert "team_code" not in client.get("/exercise", headers=team).json()  # the link still shows the result


def test_a_team_asks_for_hints_acks_and_reads_runbooks_with_its_own_code(setup):
    client, *_ = setup
    instructor = {"Authorization": "Bearer s3cret"}
    started = client.post("/exercise", json={"team": "red", "scenario": "partition"}, headers=instructor).json()
    team = {"Authorization": f"Bearer {started['team_code']}"}
    hint = client.post("/exercise/hint", headers=team)
    assert hint.status_code == 200 and hint.json()["text"] == load_scenario("partition").card.hints[0]
    ack = client.post("/exercise/ack", headers=team)
    assert ack.status_code == 409 and "has not paged" in ack.json()["detail"]  # past the role check: no page yet
    assert client.get("/room/runbooks/views", headers=team).status_code == 200
    assert client.post("/exercise/end", headers=team).status_code == 403  # the end stays the instructor's
    client.post("/exercise/end", headers=instructor)


def test_a_scenario_the_exercise_cannot_play_is_a_422_with_the_reason_never_the_files_lines(setup):
    client, controller, _, runs = setup
    client.headers["Authorization"] = "Bearer s3cret"
    unknown = client.post("/exercise", json={"team": "red", "scenario": "meteor-strike"})
    assert unknown.status_code == 422, unknown.text
    assert "meteor-strike" in unknown.json()["detail"] and "unknown" in unknown.json()["detail"]
    assert "dc-power-loss" in unknown.json()["detail"]  # lists what there is
    own = controller.runs_root / "scenarios"
    own.mkdir()
    (own / "broken.yaml").write_text("title: x\npassword: hunter2: x\n")  # not valid YAML: an error would quote it
    broken = client.post("/exercise", json={"team": "red", "scenario": "broken"})
    assert broken.status_code == 422 and "broken.yaml" in broken.json()["detail"], broken.text
    assert "not valid YAML" in broken.text and "hunter2" not in broken.text
    variant(own, "dc-power-loss")  # dc-power-loss-short: its held round dropped
    unheld = client.post("/exercise", json={"team": "red", "scenario": "dc-power-loss-short", "hold": True})
    assert unheld.status_code == 422 and "field 'hold'" in unheld.json()["detail"], unheld.text
    assert runs == []  # nothing started
    assert client.post("/exercise", json={"team": "red", "scenario": "dc-power-loss"}).status_code == 201
    client.post("/exercise/end")
