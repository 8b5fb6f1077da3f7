"""Roles over real HTTP. A real exercise started by `blackout exercise start` on a real stack under load: from
the team's link alone (its code, traded for a cookie) the team reaches the room, GET /exercise, detect and act,
and nothing else; its stream and the run folder it sees never name the fault. Two stacks' rooms live side by
side in one browser's cookie jar."""

from __future__ import annotations

import csv
import json
import os
import re
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml
from fakes.control import recording_controller
from fakes.processes import wait_all_gone
from fakes.scenarios import short_power_loss, variant
from prometheus_client.parser import text_string_to_metric_families

from chaos.control_api import ControlServer, create_control_app
from chaos.journal import Journal
from chaos.workshop.auth import team_schema

PROJECT = Path(__file__).resolve().parents[3]
ROOM = {"X-Blackout-Room": "1"}  # what the room's page sends: a refusal below is the role's, not the forgery check's
# Every route of the control API but the room's and the exercise's own: the instructor's.
INSTRUCTORS = [
    ("GET", "/events"),
    ("GET", "/status"),
    ("GET", "/scenarios"),
    ("POST", "/power/dc-west/off"),
    ("POST", "/power/dc-east/on"),
    ("GET", "/faults"),
    ("POST", "/faults"),
    ("DELETE", "/faults/power-off-1"),
    ("POST", "/panic"),
    ("PUT", "/profile"),
    ("POST", "/runs"),
    ("GET", "/runs/current"),
    ("DELETE", "/runs/current"),
    ("POST", "/exercise"),
    ("POST", "/exercise/end"),
    ("POST", "/shutdown"),
    ("GET", "/docs"),
    ("GET", "/openapi.json"),
    ("GET", "/redoc"),
]
# What would tell the answer, in a stream or a file a team reads.
TELLING = ("fault-on", "fault-off", '"phase"', "hypothesis", "recovered", "power_off", "exercise.yaml")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chaos.cli", *args], capture_output=True, text=True, cwd=PROJECT, timeout=240
    )


def poll(check: Callable[[], object], timeout_s: float, what: str) -> object:
    deadline = time.monotonic() + timeout_s
    while not (result := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.3)
    return result


class Follower(threading.Thread):
    """Reads a server-sent event stream into ``events`` until stopped (reconnecting after a quiet second:
    the bus replays its recent past, so an event may come twice, never not at all)."""

    def __init__(self, url: str, **credentials: object) -> None:
        super().__init__(daemon=True)
        self.url, self.credentials = url, credentials
        self.events: list[dict] = []
        self.raw: list[str] = []
        self.statuses: set[int] = set()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with httpx.stream("GET", self.url, timeout=httpx.Timeout(5, read=1.0), **self.credentials) as answer:
                    self.statuses.add(answer.status_code)
                    for line in answer.iter_lines():
                        self.raw.append(line)
                        if line.startswith("data:"):
                            self.events.append(json.loads(line.removeprefix("data:").strip()))
                        if self.stop.is_set():
                            return
            except httpx.HTTPError:
                continue  # quiet for a second: reconnect

    def kinds(self) -> set[str]:
        return {e["event"] for e in self.events}


def team_visible_files(team_runs: Path) -> list[Path]:
    """The files of the team's runs folder a team may read: all but the instructor's (0600 files and 0700 folders,
    which another account cannot open)."""
    files = []
    for folder, dirs, names in os.walk(team_runs):
        dirs[:] = [d for d in dirs if stat.S_IMODE((Path(folder) / d).stat().st_mode) & 0o005]
        files += [Path(folder) / n for n in names if stat.S_IMODE((Path(folder) / n).stat().st_mode) & 0o004]
    return files


@pytest.mark.long  # a real round, ~40-50 s: `make test-long` (CI runs it)
def test_a_teams_link_reaches_the_room_and_its_exercise_and_nothing_names_the_fault(tmp_path):
    scenario = short_power_loss(tmp_path, off_at=2, on_at=10, duration=18, users=4)
    hidden = yaml.safe_load(scenario.read_text())
    config = tmp_path / "round.yaml"
    config.write_text(f"team: gold\nscenario: {scenario}\nallow: [power-on]\nmax_actions: 3\n")
    board = tmp_path / "teams"
    started = cli(
        "exercise",
        "start",
        "--config",
        str(config),
        "--seed",
        "5",
        "--onset",
        "3s-3s",
        "--round",
        "30s",
        "--board",
        str(board),
    )
    team_runs = board / "gold"  # the config's `team:`, with no --team
    control = json.loads((team_runs / ".control.json").read_text()) if (team_runs / ".control.json").exists() else {}
    try:
        assert started.returncode == 0, started.stderr
        url, token = control["url"], control["token"]
        link = re.search(r"team's link .*: (http://\S+/room\?code=(\S+))", started.stdout)
        assert link and token not in link.group(1), started.stdout  # the team's link is not the control token
        assert hidden["title"] not in started.stdout and scenario.stem not in started.stdout
        links = cli("exercise", "room", "--team", "gold", "--board", str(board))  # both links again, labelled
        assert f"team's link: {link.group(1)}" in links.stdout and f"/room?token={token}" in links.stdout
        instructor = {"Authorization": f"Bearer {token}"}
        team = httpx.Client(base_url=url, timeout=30)  # the team's browser: the link, then its cookie
        traded = team.get(link.group(1), follow_redirects=False)
        assert traded.status_code == 303 and traded.headers["location"] == "/room"
        assert dict(team.cookies) == {f"blackout_team_{url.rsplit(':', 1)[1]}": link.group(2)}
        assert team.get("/room").status_code == 200
        state = team.get("/room/state").json()
        assert state["role"] == "team" and state["exercise"]["team"] == "gold" and "team_code" not in state["exercise"]
        for method, path in INSTRUCTORS:
            for how in ({"headers": ROOM}, {"headers": {"Authorization": f"Bearer {link.group(2)}"}}):
                refused = team.request(method, path, json={}, **how)
                assert refused.status_code == 403 and "instructor's" in refused.json()["detail"], (method, path, how)
        assert httpx.get(url + "/status", headers=instructor).json()["power"]["dc-west"] is True  # refused, not done

        streams = {
            "team": Follower(url + "/room/events", cookies=dict(team.cookies)),
            "instructor": Follower(url + "/events", headers=instructor),
        }
        for follower in streams.values():
            follower.start()
        poll(lambda: "power-off" in streams["team"].kinds(), 90, "the team never saw dc-east go dark")
        # a declaration after the onset says nothing of it while the round runs
        declaration = {
            "symptom": "failed_requests",
            "where": "dc-east",
            "fault": "power-loss",
            "text": "dc-east is dark",
        }
        assert team.post("/exercise/detect", json=declaration, headers=ROOM).status_code == 200
        view = team.get("/exercise").json()
        assert view["detected_after_s"] is None and view["declarations"][0]["names_target"] is None
        assert "hidden" not in view and "team_code" not in view and "run_dir" not in view
        refused = team.post("/exercise/act", json={"action": "power-off", "target": "dc-west"}, headers=ROOM)
        assert refused.status_code == 403 and "allowed: power-on" in refused.json()["detail"]
        panic = team.post("/exercise/act", json={"action": "panic"}, headers=ROOM)  # the instructor's, never a lever
        assert panic.status_code == 403 and "'panic' is not allowed" in panic.json()["detail"]
        assert team.get("/room/window").json()["run_dir"] is None  # the round's folder is the instructor's
        poll(
            lambda: not httpx.get(url + "/runs/current", headers=instructor).json()["running"],
            120,
            "the round's run never ended",
        )
        poll(lambda: "end" in streams["instructor"].kinds(), 10, "the instructor's stream never saw the run end")
        time.sleep(1.5)  # the team's stream has had the time to receive the same events (and shows none of them)
        for follower in streams.values():
            follower.stop.set()
        told = streams["instructor"]
        assert {"fault-on", "phase", "hypothesis", "recovered"} <= told.kinds()
        checks = [e for e in told.events if e["event"] == "hypothesis" or e.get("phase") == "outage"]
        assert checks[0]["event"] == "hypothesis" and checks[0]["phase"] == "baseline"  # checks precede the onset
        seen = "\n".join(streams["team"].raw)
        assert streams["team"].statuses == {200} and {"power-off", "exercise-detect"} <= streams["team"].kinds()
        assert streams["team"].kinds() <= {"power-off", "power-on", "exercise-detect", "exercise-act"}
        for word in (*TELLING, hidden["title"], scenario.stem):
            assert word not in seen, word

        # the files: the instructor's folders are 0700 (the hidden scenario 0600), the rest never tells
        exercise_root = team_runs / "exercise"
        assert stat.S_IMODE(exercise_root.stat().st_mode) == 0o700
        assert stat.S_IMODE((team_runs / ".control.json").stat().st_mode) == 0o600
        assert stat.S_IMODE((team_runs / "scenarios").stat().st_mode) == 0o700
        assert stat.S_IMODE(next(exercise_root.glob("*-gold/.hidden/exercise.yaml")).stat().st_mode) == 0o600
        visible = team_visible_files(team_runs)
        assert any(p.name == "gateway-west.log" for p in visible)  # the services' logs: the team's to read
        assert any(p.name == "journal.jsonl" for p in visible)  # the stack's journal (power, the team's moves)
        for path in visible:
            content = path.read_bytes()
            for word in (*TELLING, hidden["title"], scenario.stem):
                assert word.encode() not in content, (path, word)
        answer = next(exercise_root.glob("*-gold/*-exercise-*/scenario.yaml"))  # the round's run: the instructor's
        assert hidden["title"] in answer.read_text()

        ended = cli("exercise", "end", "--team", "gold", "--board", str(board))
        assert ended.returncode == 0, ended.stderr
        revealed = team.get("/exercise").json()  # the end tells the team everything
        assert revealed["hidden"]["title"] == hidden["title"] and revealed["detected_after_s"] is not None
    finally:
        if control:
            cli("down", "--runs", str(team_runs))
    pids = [control["pid"]] + [p for e in Journal(Path(control["run_dir"])).read() for p in e.get("pids", {}).values()]
    assert wait_all_gone(pids, timeout_s=20) == []


def fault_samples(url: str) -> dict[str, float]:
    """An instance's /metrics (open to anyone on the machine: a team too) on injected faults, by series."""
    text = httpx.get(url + "/metrics", timeout=5).text
    return {
        f"{sample.name}{sorted(sample.labels.items())}": sample.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("blackout_fault")
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


@pytest.mark.long  # a real round, ~40-50 s: `make test-long` (CI runs it)
def test_a_link_fault_in_a_round_is_named_nowhere_a_team_reads(tmp_path):
    """A latency fault on a real link, in a real round: the services carry it (their clients time out) but neither
    their logs in the team's folder nor their /metrics name it; only the instructor's round journal does."""
    scenario = variant(
        tmp_path,
        "brownout",
        load={"users": 4, "spawn_rate": 10},
        duration="16s",
        timeline=[{"at": "2s", "latency": {"from": "gateway-west", "to": "views-east", "ms": 1500}, "for": "8s"}],
        hypothesis={"window": "5s", "min_requests": 5, "probes": [{"success_rate": {"action": "feed", "min": 0.9}}]},
    )
    config = tmp_path / "round.yaml"
    config.write_text(f"team: jade\nscenario: {scenario}\nseed: 3\nonset: {{min: 2s, max: 2s}}\nround: 24s\n")
    board = tmp_path / "teams"
    started = cli("exercise", "start", "--config", str(config), "--board", str(board))
    team_runs = board / "jade"
    control = json.loads((team_runs / ".control.json").read_text()) if (team_runs / ".control.json").exists() else {}
    try:
        assert started.returncode == 0, started.stderr
        url, instructor = control["url"], {"Authorization": f"Bearer {control['token']}"}
        instances = httpx.get(url + "/status", headers=instructor).json()["instances"]
        told = Follower(url + "/events", headers=instructor)
        told.start()
        on = poll(lambda: next((e for e in told.events if e["event"] == "fault-on"), None), 90, "the fault never came")
        assert isinstance(on, dict) and on["action"]["latency"]["from"] == "gateway-west"
        assert on["output"][on["id"]] == {"gateway-west": "ok"}  # the service took it: it is in force there
        for name, info in instances.items():  # what a team can scrape while the fault is in force
            samples = fault_samples(f"http://127.0.0.1:{info['port']}")
            assert not any(samples.values()), (name, samples)
        poll(
            lambda: not httpx.get(url + "/runs/current", headers=instructor).json()["running"],
            120,
            "the round's run never ended",
        )
        told.stop.set()
        visible = team_visible_files(team_runs)
        assert any(p.name == "gateway-west.log" for p in visible)
        for path in visible:  # a word "fault", the id, the kind or the spec (the services' data: "default" is not)
            content = path.read_text(errors="replace").lower()
            for word in (re.escape(on["id"]), r"\bfaults?\b", "latency", "injected", "'targets'"):
                assert not re.search(word, content), (path, word)
        round_dir = next((team_runs / "exercise").glob("*-jade/*-exercise-*"))  # the instructor's
        assert on["id"] in (round_dir / "journal.jsonl").read_text()  # the fault's record
        with (round_dir / "requests.csv").open() as f:  # and its symptom: dc-west's feeds waited on views-east
            assert any(r["dc"] == "dc-west" and float(r["latency_ms"]) > 1000 for r in csv.DictReader(f))
    finally:
        if control:
            cli("down", "--runs", str(team_runs))
    pids = [control["pid"]] + [p for e in Journal(Path(control["run_dir"])).read() for p in e.get("pids", {}).values()]
    assert wait_all_gone(pids, timeout_s=20) == []


def test_two_stacks_rooms_live_side_by_side_in_one_browser(tmp_path):
    servers = []
    for name in ("a", "b"):
        runs = tmp_path / name
        runs.mkdir()
        controller = recording_controller(runs)
        controller.start_run = lambda *args, **kw: {"running": True}  # type: ignore[method-assign]
        server = ControlServer(controller, runs, runs)
        server.start()
        servers.append(server)
    try:
        a, b = servers
        codes = [
            httpx.post(
                s.url + "/exercise",
                json={"team": "red", "scenario": "dc-power-loss"},
                headers={"Authorization": f"Bearer {s.token}"},
            ).json()["team_code"]
            for s in servers
        ]
        browser = httpx.Client(timeout=10)  # one cookie jar for 127.0.0.1, whatever the port
        assert browser.get(f"{a.url}/room?code={codes[0]}").status_code == 303
        assert browser.get(f"{b.url}/room?token={b.token}").status_code == 303
        assert len(browser.cookies) == 2  # named per stack: the second did not replace the first
        assert browser.get(a.url + "/room/state").json()["role"] == "team"
        assert browser.get(b.url + "/room/state").json()["role"] == "instructor"
        assert browser.get(a.url + "/status").status_code == 403 and browser.get(b.url + "/status").status_code == 200
        assert browser.get(f"{a.url}/room?code={codes[1]}").status_code == 401  # one stack's code opens no other
        # a new exercise on a stack: the previous team's link stops working there
        httpx.post(a.url + "/exercise/end", headers={"Authorization": f"Bearer {a.token}"})
        httpx.post(a.url + "/exercise", json={"team": "blue"}, headers={"Authorization": f"Bearer {a.token}"})
        assert browser.get(a.url + "/room/state").status_code == 401
    finally:
        for server in servers:
            server.stop()


TEAM_API = PROJECT / "docs" / "team-api.json"


def test_docs_team_api_is_the_apps_own_schema_cut_to_the_team_routes(tmp_path):
    """docs/team-api.json is what the app generates for a team's code (a team cannot read /openapi.json):
    regenerate it with BLACKOUT_WRITE_TEAM_API=1 after changing a team route."""
    app = create_control_app(recording_controller(tmp_path), "s3cret", threading.Event())
    generated = team_schema(app.openapi())
    text = json.dumps(generated, indent=1, sort_keys=True) + "\n"
    if os.environ.get("BLACKOUT_WRITE_TEAM_API") == "1":
        TEAM_API.write_text(text)
    assert TEAM_API.read_text() == text, "docs/team-api.json is stale: rerun this test with BLACKOUT_WRITE_TEAM_API=1"
    assert set(generated["paths"]) == {
        "/room/state",
        "/room/window",
        "/room/events",
        "/exercise",
        "/exercise/detect",
        "/exercise/hint",
        "/exercise/ack",
        "/exercise/act",
        "/exercise/roles",
        "/exercise/status-update",
    }
    assert list(generated["paths"]["/exercise"]) == ["get"]  # starting one is the instructor's
    assert {"Declaration", "Remediation"} <= set(generated["components"]["schemas"])
