"""The control room in a real browser (headless Chromium driven by selenium) on a real stack under load:
cut dc-east's power by clicking, see it go dark and the success chart react, restore it, toggle a fault;
a wrong token is refused; an exercise shows its clock and takes a declaration. Skips, saying why, without
Debian's chromium + chromium-driver or the selenium package."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from fakes.processes import wait_all_gone
from fakes.scenarios import short_power_loss, variant

from chaos.engine.scenario import load_scenario
from chaos.journal import Journal
from chaos.topology import load_topology

PROJECT = Path(__file__).resolve().parents[3]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
SCREENSHOT_DIR = os.environ.get("BLACKOUT_SCREENSHOTS")  # keep the pictures somewhere to look at them

try:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - the skip below says it
    webdriver = None

pytestmark = [
    pytest.mark.skipif(
        webdriver is None or not CHROMIUM or not DRIVER,
        reason="needs a real browser: apt-get install chromium chromium-driver, and pip install selenium "
        "(.ci/run installs both where it can)",
    ),
    pytest.mark.long,  # a real stack and a browser each, ~40 s apiece: `make test-long` (CI runs it)
]


def blackout(*args: str, runs: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chaos.cli", *args, "--runs", str(runs)],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        timeout=180,
    )


def load_only(tmp_path: Path) -> Path:
    """Users for 150 s; the only timeline step is a 1 ms latency near the end: the power cut is the test's."""
    return variant(
        tmp_path,
        "dc-power-loss",
        load={"users": 8},
        duration="150s",
        timeline=[{"at": "140s", "latency": {"from": "dc-west", "to": "dc-east", "ms": 1}, "for": "5s"}],
        hypothesis={"window": "5s", "min_requests": 5, "probes": [{"success_rate": {"action": "feed", "min": 0.9}}]},
    )


def browser() -> webdriver.Chrome:
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1300",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(DRIVER), options=options)


def clicked(driver: webdriver.Chrome, selector: str) -> bool:
    """Click ``selector``; False when the page re-rendered it between finding and clicking (try again)."""
    try:
        driver.find_element(By.CSS_SELECTOR, selector).click()
    except StaleElementReferenceException:
        return False
    return True


def waiting(driver: webdriver.Chrome, seconds: float) -> WebDriverWait:
    """A wait that polls every 0.5 s and looks again when the page re-rendered an element between finding and
    reading it (the room redraws its timers, declarations and hints with every state it polls)."""
    return WebDriverWait(driver, seconds, poll_frequency=0.5, ignored_exceptions=(StaleElementReferenceException,))


def text_of(driver: webdriver.Chrome, element_id: str) -> str:
    """An element's text: the room redraws its timers and result with every state it polls, so a found element
    can be gone before its text is read."""
    for _ in range(5):
        try:
            return driver.find_element(By.ID, element_id).text
        except StaleElementReferenceException:
            continue  # redrawn between finding and reading: find the new one
    raise AssertionError(f"#{element_id} was redrawn under every one of 5 reads")


def latest_success(driver: webdriver.Chrome, dc: str, since: float) -> list[float]:
    """The success rates the page holds for ``dc`` in buckets that ended after ``since``."""
    series = driver.execute_script("return window.blackoutRoom.series") or {}
    return [p["success"] for p in series.get(dc, []) if p["t"] > since and p["success"] is not None]


def test_the_control_room_cuts_and_restores_power_and_refuses_a_wrong_token(tmp_path):
    topology = load_topology(PROJECT / "topologies" / "fragile.yaml").with_any_ports()
    topology_file = tmp_path / "topology.yaml"
    topology_file.write_text(yaml.safe_dump(topology.model_dump()))
    runs = tmp_path / "runs"
    up = blackout("up", "--detach", "--topology", str(topology_file), runs=runs)
    assert up.returncode == 0, up.stderr
    control = json.loads((runs / ".control.json").read_text())
    url, auth = control["url"], {"Authorization": f"Bearer {control['token']}"}
    driver = None
    try:
        scenario = load_only(runs / "scenarios").stem  # over HTTP a library name: the stack's own library
        started = httpx.post(url + "/runs", json={"scenario": scenario}, headers=auth, timeout=30)
        assert started.status_code == 202, started.text
        driver = browser()
        driver.get(f"{url}/room?token={control['token']}")
        assert driver.current_url == f"{url}/room"  # the token was traded for a cookie and left the URL
        wait = waiting(driver, 90)
        east = wait.until(lambda d: d.find_element(By.ID, "dc-dc-east"))
        assert "dark" not in east.get_attribute("class")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#dc-dc-east .instance.running")) == 5)
        # users are served: the chart has healthy points for dc-west (three buckets: a baseline to see)
        wait.until(lambda d: sum(s >= 0.9 for s in latest_success(d, "dc-west", time.time() - 30)) >= 3)

        cut_at = time.time()
        driver.find_element(By.ID, "power-dc-east").click()
        wait.until(lambda d: "dark" in d.find_element(By.ID, "dc-dc-east").get_attribute("class"))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#dc-dc-east .instance.powered-off")) == 5)
        assert driver.find_element(By.ID, "power-dc-east").text == "Restore power"
        # the chart reacts: with the naive profile dc-west's users fail along with dc-east
        wait.until(lambda d: any(s < 0.9 for s in latest_success(d, "dc-west", cut_at + 5)))
        wait.until(lambda d: "powered off" in d.find_element(By.ID, "log").text)  # from the event stream
        markers = driver.execute_script("return window.blackoutRoom.markers.map(m => m.label)")
        assert "dc-east off" in markers
        shot = Path(SCREENSHOT_DIR or tmp_path) / "control-room-dc-east-dark.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(shot))

        driver.find_element(By.ID, "power-dc-east").click()
        wait.until(lambda d: "dark" not in d.find_element(By.ID, "dc-dc-east").get_attribute("class"))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#dc-dc-east .instance.running")) == 5)
        assert httpx.get(url + "/status", headers=auth).json()["power"] == {"dc-east": True, "dc-west": True}

        # a fault toggled from the page: 300 ms between the data centers (the form's defaults), then removed
        driver.find_element(By.CSS_SELECTOR, "#fault-form button").click()
        wait.until(lambda d: "latency" in d.find_element(By.ID, "faults").text)
        assert [f["action"] for f in httpx.get(url + "/faults", headers=auth).json()] == [
            {"latency": {"from": "dc-west", "to": "dc-east", "ms": 300.0, "jitter_ms": 0.0}, "for": "60s"}
        ]
        wait.until(lambda d: clicked(d, "#faults button[data-fault]"))  # the list re-renders as it polls
        wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, "#faults button[data-fault]"))
        assert httpx.get(url + "/faults", headers=auth).json() == []

        # a wrong token is refused, in the browser and without one
        driver.delete_all_cookies()
        driver.get(f"{url}/room?token=not-the-token")
        body = driver.find_element(By.TAG_NAME, "body").text
        assert "a valid control token is required" in body and not driver.find_elements(By.ID, "topology")
        driver.get(f"{url}/room")
        assert "a valid control token is required" in driver.find_element(By.TAG_NAME, "body").text
        port = url.rsplit(":", 1)[1]
        assert httpx.get(url + "/room/state", cookies={f"blackout_control_{port}": "wrong"}).status_code == 401

        # an exercise on the same stack: the page shows its clock and takes the team's declaration
        assert httpx.delete(url + "/runs/current", headers=auth, timeout=180).status_code == 200
        config = {
            "team": "red",
            "scenario": scenario,
            "seed": 3,
            "allow": ["power-on"],
            "onset": {"min": "60s", "max": "60s"},
        }
        exercise = httpx.post(url + "/exercise", json=config, headers=auth, timeout=30)
        assert exercise.status_code == 201
        driver.get(f"{url}/room?code={exercise.json()['team_code']}")  # the team's link
        wait.until(
            lambda d: (
                d.find_element(By.ID, "exercise").is_displayed()
                and "team red" in d.find_element(By.ID, "team").text.lower()
            )
        )
        assert not driver.find_element(By.ID, "faults-panel").is_displayed()  # trainees remediate, they do not inject
        assert driver.find_element(By.ID, "power-dc-east").get_attribute("disabled")  # power-off is not allowed
        driver.find_element(By.ID, "detect-text").send_keys("feeds are slow in dc-west")
        driver.find_element(By.CSS_SELECTOR, "#detect-form button").click()
        wait.until(lambda d: "feeds are slow in dc-west" in d.find_element(By.ID, "declarations").text)
        assert (
            httpx.get(url + "/exercise", headers=auth).json()["declarations"][0]["text"] == "feeds are slow in dc-west"
        )
        assert httpx.post(url + "/exercise/end", headers=auth, timeout=180).status_code == 200
        wait.until(lambda d: d.find_elements(By.ID, "ex-points"))  # the score, revealed on the page
        assert not driver.find_element(By.ID, "detect-form").is_displayed()  # the round is over
        result = text_of(driver, "exercise-result").lower().replace("false alarms", "")
        assert "false" not in result and "undefined" not in result  # no raw value leaks into the page
        parts = text_of(driver, "ex-parts")
        assert "false alarms -100" in parts  # declared before the fault
        score = httpx.get(url + "/exercise", headers=auth).json()["score"]
        assert f"{score['points']} of {score['out_of']}" in result  # 900 without a page: acknowledge n/a
        assert ("acknowledge n/a (no page)" in parts) == (not score["paged"]), (parts, score["paged"])
        driver.save_screenshot(str(shot.with_name("control-room-exercise-ended.png")))
    finally:
        if driver is not None:
            driver.quit()
        httpx.delete(url + "/runs/current", headers=auth, timeout=180)
        down = blackout("down", runs=runs)
    assert down.returncode == 0, down.stderr
    pids = [control["pid"]] + [p for e in Journal(Path(control["run_dir"])).read() for p in e.get("pids", {}).values()]
    assert wait_all_gone(pids, timeout_s=15) == []


def shoot(driver: webdriver.Chrome, name: str) -> Path:
    """A screenshot in /tmp (or BLACKOUT_SCREENSHOTS) to look at: ws-score-<name>.png."""
    shot = Path(SCREENSHOT_DIR or "/tmp") / f"ws-score-{name}.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(shot))
    return shot


def test_a_team_declares_takes_a_hint_acks_the_page_and_sees_its_score(tmp_path):
    """A held power loss on a real stack: the room declares a structured incident, takes a hint, the pager
    pages from what users recorded, the room acknowledges it, and at the end the page shows the score."""
    topology = load_topology(PROJECT / "topologies" / "fragile.yaml").with_any_ports()
    topology_file = tmp_path / "topology.yaml"
    topology_file.write_text(yaml.safe_dump(topology.model_dump()))
    runs = tmp_path / "runs"
    up = blackout("up", "--detach", "--topology", str(topology_file), runs=runs)
    assert up.returncode == 0, up.stderr
    control = json.loads((runs / ".control.json").read_text())
    url, auth = control["url"], {"Authorization": f"Bearer {control['token']}"}
    scenario = short_power_loss(runs / "scenarios", off_at=24, on_at=50, duration=70, users=6).stem
    driver = None
    try:
        config = {
            "team": "red",
            "scenario": scenario,
            "seed": 7,
            "hold": True,
            "allow": ["power-on"],
            "onset": {"min": "1s", "max": "1s"},
        }
        assert httpx.post(url + "/exercise", json=config, headers=auth, timeout=30).status_code == 201
        driver = browser()
        driver.get(f"{url}/room?token={control['token']}")
        wait = waiting(driver, 120)
        wait.until(lambda d: d.find_element(By.ID, "exercise").is_displayed())
        assert not driver.find_element(By.ID, "page").is_displayed()  # nothing burns yet

        driver.find_element(By.ID, "hint").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#hints li"))
        first_hint = load_scenario("dc-power-loss").card.hints[0]
        assert first_hint in driver.find_element(By.ID, "hints").text
        assert "costs 50 points" in driver.find_element(By.ID, "hint-cost").text  # the next rung is dearer

        page = wait.until(
            lambda d: d.find_element(By.ID, "page") if d.find_element(By.ID, "page").is_displayed() else None
        )
        assert "SLO burn" in page.text and "runbooks" in page.text
        shoot(driver, "paged")
        driver.find_element(By.ID, "ack").click()
        wait.until(lambda d: "acknowledged after" in d.find_element(By.ID, "page-text").text)

        Select(driver.find_element(By.ID, "detect-symptom")).select_by_visible_text("zero_view_displays")
        Select(driver.find_element(By.ID, "detect-where")).select_by_visible_text("dc-east")
        Select(driver.find_element(By.ID, "detect-fault")).select_by_visible_text("power-loss")
        driver.find_element(By.ID, "detect-text").send_keys("dc-east is dark")
        driver.find_element(By.CSS_SELECTOR, "#detect-form button").click()
        wait.until(lambda d: "zero_view_displays at dc-east, power-loss" in d.find_element(By.ID, "declarations").text)
        shoot(driver, "declared")
        view = httpx.get(url + "/exercise", headers=auth).json()
        assert view["declarations"][0]["where"] == "dc-east" and view["page"]["acked_at"] is not None

        assert httpx.post(url + "/exercise/end", headers=auth, timeout=180).status_code == 200
        wait.until(lambda d: d.find_elements(By.ID, "ex-points"))
        score = httpx.get(url + "/exercise", headers=auth).json()["score"]
        assert text_of(driver, "ex-points") == str(score["points"])
        parts = text_of(driver, "ex-parts")
        assert f"acknowledge {score['parts']['acknowledge']}" in parts and "hints -25" in parts
        assert score["paged"] and score["ack_s"] is not None and score["localization"] == 1.0 and score["root_cause"]
        assert "power-loss" in text_of(driver, "ex-answer")  # the card's model answer
        shoot(driver, "scored")
    finally:
        if driver is not None:
            driver.quit()
        httpx.delete(url + "/runs/current", headers=auth, timeout=180)
        down = blackout("down", runs=runs)
    assert down.returncode == 0, down.stderr
    pids = [control["pid"]] + [p for e in Journal(Path(control["run_dir"])).read() for p in e.get("pids", {}).values()]
    assert wait_all_gone(pids, timeout_s=15) == []


def test_the_teams_link_opens_a_room_that_plays_and_shows_no_fault(tmp_path):
    """The link `blackout exercise start` prints for the team, in a real browser, on a real exercise: the room
    plays (clock, declaration, the allowed power button), has no fault panel and no Panic, and its event log
    shows dc-east going dark but never the fault. The instructor's link, in the same browser, shows all."""
    scenario = variant(
        tmp_path,
        "dc-power-loss",
        title="A test power loss",
        load={"users": 4, "spawn_rate": 10},
        duration="300s",  # held dark until the team acts (or `down` ends it): a slow machine has the time
        timeline=[{"at": "2s", "power_off": "dc-east"}],
        hypothesis={"window": "5s", "min_requests": 5, "probes": [{"success_rate": {"action": "feed", "min": 0.9}}]},
        hold={
            "broken": "dc-east stays dark",
            "timeline": [{"at": "2s", "power_off": "dc-east"}],
            "cleared_by": [{"power_on": "dc-east"}],
        },
    )
    board = tmp_path / "teams"
    start = [
        "exercise",
        "start",
        "--team",
        "red",
        "--scenario",
        str(scenario),
        "--seed",
        "1",
        "--onset",
        "2s-2s",
        "--hold",
        "--allow",
        "power-on",
        "--board",
        str(board),
    ]
    started = subprocess.run(
        [sys.executable, "-m", "chaos.cli", *start], capture_output=True, text=True, cwd=PROJECT, timeout=180
    )
    runs = board / "red"
    control = json.loads((runs / ".control.json").read_text()) if (runs / ".control.json").exists() else {}
    driver = None
    try:
        assert started.returncode == 0, started.stderr
        url, auth = control["url"], {"Authorization": f"Bearer {control['token']}"}
        team_link = next(w for w in started.stdout.split() if "/room?code=" in w)
        driver = browser()
        driver.get(team_link)
        assert driver.current_url == f"{url}/room"  # the code was traded for a cookie and left the URL
        wait = waiting(driver, 90)
        wait.until(lambda d: "team red" in d.find_element(By.ID, "team").text.lower())
        assert driver.execute_script("return window.blackoutRoom.state.role") == "team"
        assert not driver.find_element(By.ID, "faults-panel").is_displayed()
        assert not driver.find_element(By.ID, "panic").is_displayed()
        # the hidden power loss: dc-east goes dark; the log says so, as a host going down, and names no fault
        wait.until(lambda d: "dark" in d.find_element(By.ID, "dc-dc-east").get_attribute("class"))
        wait.until(lambda d: "powered off" in d.find_element(By.ID, "log").text)
        wait.until(lambda d: "told at the end" in d.find_element(By.ID, "ex-detected").text)  # redrawn every poll
        driver.find_element(By.ID, "detect-text").send_keys("dc-east is dark")
        driver.find_element(By.CSS_SELECTOR, "#detect-form button").click()
        wait.until(lambda d: "dc-east is dark" in d.find_element(By.ID, "declarations").text)
        wait.until(lambda d: len(latest_success(d, "dc-west", time.time() - 60)) >= 2)  # the charts follow the round
        log = driver.find_element(By.ID, "log").text
        for word in ("fault", "phase", "steady state", "recovered", "A test power loss"):
            assert word not in log, word
        shots = Path(SCREENSHOT_DIR or tmp_path)
        shots.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(shots / "room-team-link.png"))
        # the allowed action from the page: power-on dc-east
        assert driver.find_element(By.ID, "power-dc-east").text == "Restore power"
        driver.find_element(By.ID, "power-dc-east").click()
        # the action is the team's once it returned (power comes back while it still waits for health)
        wait.until(lambda d: "power-on dc-east: succeeded" in d.find_element(By.ID, "declarations").text)
        assert "dark" not in driver.find_element(By.ID, "dc-dc-east").get_attribute("class")
        actions = httpx.get(url + "/exercise", headers=auth).json()["actions"]
        assert [(a["action"], a["target"], a["status"]) for a in actions] == [("power-on", "dc-east", "succeeded")]
        # the round ends: the team sees its score, and no power button works for it any more (the API refuses too)
        assert httpx.post(url + "/exercise/end", headers=auth, timeout=180).status_code == 200
        wait.until(lambda d: d.find_elements(By.ID, "ex-points"))
        wait.until(lambda d: not d.find_element(By.ID, "power-dc-east").is_enabled())
        assert not driver.find_element(By.ID, "power-dc-west").is_enabled()

        driver.get(f"{url}/room?token={control['token']}")  # the instructor, in the same browser
        wait.until(lambda d: "/room?code=" in d.find_element(By.ID, "timers").text)
        assert driver.execute_script("return window.blackoutRoom.state.role") == "instructor"
        assert driver.find_element(By.ID, "panic").is_displayed()
        assert driver.find_element(By.ID, "power-dc-east").is_enabled()  # the instructor's levers stay
        wait.until(lambda d: "phase" in d.find_element(By.ID, "log").text)  # the raw stream: everything
        assert driver.save_screenshot(str(shots / "room-instructor-link.png"))
    finally:
        if driver is not None:
            driver.quit()
        if control:
            subprocess.run(
                [sys.executable, "-m", "chaos.cli", "down", "--runs", str(runs)], cwd=PROJECT, capture_output=True
            )
    pids = [control["pid"]] + [p for e in Journal(Path(control["run_dir"])).read() for p in e.get("pids", {}).values()]
    assert wait_all_gone(pids, timeout_s=20) == []


def test_the_game_masters_console_pushes_a_hint_the_teams_room_shows_and_adds_a_fault(tmp_path):
    """A real exercise on a real stack, the console (instructor's link) and the team's room (team's link) in two
    browsers side by side: the console shows the hidden round, gives a hint the room then shows; over real HTTP
    the console adds a second fault (a bad one refused with its reason), watchers are read-only, the team's
    status update reaches the console and the draft, and the console ends the round."""
    scenario = variant(
        tmp_path,
        "dc-power-loss",
        title="A console power loss",
        load={"users": 4, "spawn_rate": 10},
        duration="300s",  # held dark until the console ends it: a slow machine has the time
        timeline=[{"at": "2s", "power_off": "dc-east"}],
        hypothesis={"window": "5s", "min_requests": 5, "probes": [{"success_rate": {"action": "feed", "min": 0.9}}]},
    )
    board = tmp_path / "teams"
    start = ["exercise", "start", "--team", "red", "--scenario", str(scenario), "--seed", "1", "--onset", "2s-2s"]
    started = subprocess.run(
        [sys.executable, "-m", "chaos.cli", *start, "--board", str(board)],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        timeout=180,
    )
    runs = board / "red"
    control = json.loads((runs / ".control.json").read_text()) if (runs / ".control.json").exists() else {}
    drivers: list[webdriver.Chrome] = []
    try:
        assert started.returncode == 0, started.stderr
        url, auth = control["url"], {"Authorization": f"Bearer {control['token']}"}
        codes = httpx.get(url + "/exercise", headers=auth).json()
        assert f"{url}/room?watch={codes['watch_code']}" in started.stdout and f"{url}/console" in started.stdout
        watch = {"Authorization": f"Bearer {codes['watch_code']}"}
        console, room = browser(), browser()
        drivers += [console, room]
        console.get(f"{url}/room?token={control['token']}")  # the instructor's cookie, then the console
        console.get(f"{url}/console")
        room.get(f"{url}/room?code={codes['team_code']}")
        wait = waiting(console, 90)
        panel = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#team-red .hidden-truth"))
        assert "A console power loss" in panel.text and "dc-east" in panel.text
        assert "provisional" in text_of(console, "team-red")
        assert control["token"] not in console.page_source  # the page never holds a token
        waiting(room, 90).until(lambda d: "team red" in d.find_element(By.ID, "team").text.lower())
        assert not room.find_elements(By.CSS_SELECTOR, "#hints li")

        console.find_element(By.CSS_SELECTOR, "#team-red .give-hint").click()
        first_hint = load_scenario("dc-power-loss").card.hints[0]
        waiting(room, 30).until(lambda d: first_hint in d.find_element(By.ID, "hints").text)
        assert "from the game master" in room.find_element(By.ID, "hints").text
        wait.until(lambda d: "given, -25" in d.find_element(By.CSS_SELECTOR, "#team-red .hints").text)
        assert console.save_screenshot("/tmp/console-hint-given.png")
        assert room.save_screenshot("/tmp/console-room-sees-hint.png")

        # a second fault over real HTTP: a bad choice is refused with the reason, a good one is journaled
        bad = httpx.post(url + "/console/teams/red/fault", json={"kind": "gremlins", "target": "dc-west"}, headers=auth)
        assert bad.status_code == 422 and "fault kinds" in bad.json()["detail"]
        added = httpx.post(
            url + "/console/teams/red/fault", json={"kind": "kill_instance", "target": "recommender-west"}, headers=auth
        )
        assert added.status_code == 200, added.text
        status = httpx.get(url + "/status", headers=auth).json()
        assert status["instances"]["recommender-west"]["state"] != "running"
        wait.until(lambda d: "kill_instance" in d.find_element(By.CSS_SELECTOR, "#team-red .hidden-truth").text)

        # watchers: the room read-only; the team's status update reaches the console
        assert httpx.post(url + "/exercise/hint", headers=watch).status_code == 403
        assert httpx.get(url + "/console", headers=watch).status_code == 403
        team = {"Authorization": f"Bearer {codes['team_code']}"}
        assert httpx.get(url + "/console/teams", headers=team).status_code == 403
        assert httpx.post(url + "/exercise/roles", json={"communications": "Lin"}, headers=team).status_code == 200
        update = httpx.post(url + "/exercise/status-update", json={"text": "dc-east down, failing over"}, headers=team)
        assert update.status_code == 200
        wait.until(lambda d: "Lin: dc-east down" in d.find_element(By.CSS_SELECTOR, "#team-red .status-updates").text)
        assert console.save_screenshot("/tmp/console-second-fault-and-update.png")
        room.get(f"{url}/room?watch={codes['watch_code']}")  # the projector's audience: read-only
        watching = waiting(room, 60)
        watching.until(lambda d: "dc-east down, failing over" in d.find_element(By.ID, "status-updates").text)
        assert room.execute_script("return window.blackoutRoom.state.role") == "watch"
        for form in ("detect-form", "act-form", "roles-form", "status-form", "hint"):
            assert not room.find_element(By.ID, form).is_displayed(), form
        assert room.find_element(By.ID, "power-dc-west").get_attribute("disabled")
        assert room.find_element(By.ID, "hint-cost").text == ""  # nothing to buy
        assert first_hint in room.find_element(By.ID, "hints").text
        assert room.save_screenshot("/tmp/console-watchers-view.png")

        # the shared script's refusal hook: the console takes a 403 (a team's cookie) as refused, the room a 401
        port = url.rsplit(":", 1)[1]
        console.delete_all_cookies()
        console.add_cookie({"name": f"blackout_team_{port}", "value": codes["team_code"]})
        wait.until(lambda d: d.execute_script("return window.blackoutConsole.refused"))
        assert "refused: the console is the instructor's" in console.find_element(By.ID, "conn").text
        room.delete_all_cookies()
        waiting(room, 30).until(lambda d: d.execute_script("return window.blackoutRoom.refused"))
        assert "refused" in room.find_element(By.TAG_NAME, "body").get_attribute("class")

        ended = httpx.post(url + "/console/teams/red/end", headers=auth, timeout=180)
        assert ended.status_code == 200 and ended.json()["state"] == "ended"
        assert "dc-east down, failing over" in Path(ended.json()["draft"]).read_text()
        status = httpx.get(url + "/status", headers=auth).json()
        assert status["instances"]["recommender-west"]["state"] == "running"  # the second fault ended with it
    finally:
        for driver in drivers:
            driver.quit()
        if control:
            subprocess.run(
                [sys.executable, "-m", "chaos.cli", "down", "--runs", str(runs)], cwd=PROJECT, capture_output=True
            )
    pids = [control["pid"]] + [p for e in Journal(Path(control["run_dir"])).read() for p in e.get("pids", {}).values()]
    assert wait_all_gone(pids, timeout_s=20) == []
