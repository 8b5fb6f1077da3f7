"""A real round for two teams on one machine through `blackout workshop start/status/end`: each team on its own
stack, runs folder, team link and CPU; both rooms open side by side in one browser (each stack's cookies
coexist), and the game master's console in a third tab shows both teams and extends blue's round from its
button; red finds the held power loss and restores it, blue does nothing; `end` scores both in one round's
leaderboard, and the scores of two "machines" collect into one leaderboard. Nothing is left running.
Screenshots: /tmp/room-shots (or BLACKOUT_SCREENSHOTS)."""

from __future__ import annotations

import json
import re
import shutil
import socket
from pathlib import Path

import httpx
import pytest
from fakes.processes import wait_all_gone
from fakes.two_teams import (
    TEAMS,
    blackout,
    dark,
    down_all,
    held_round,
    poll,
    red_declares,
    red_powers_on,
    team_control,
    team_stack_pids,
)
from test_room_browser import CHROMIUM, DRIVER, SCREENSHOT_DIR, browser, webdriver

from chaos.profile_files import PROFILES
from chaos.workshop import cpus
from chaos.workshop.commands import team_topology
from chaos.workshop.teams import port_block
from services.common.errors import UsageError

SHOTS = Path(SCREENSHOT_DIR or "/tmp/room-shots")


def get(url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """A generous timeout: a stack on one CPU of a busy machine may take seconds to answer."""
    return httpx.get(url, headers=headers, timeout=60)


def status(board: Path) -> dict:
    answer = blackout("workshop", "status", "--json", "--board", str(board))
    assert answer.returncode == 0, answer.stderr
    return json.loads(answer.stdout)


def room_shows_team(driver, team: str) -> bool:
    return f"team {team}" in driver.find_element("id", "team").text.lower()


def shot(driver, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(SHOTS / f"{name}.png"))


def console_states(driver) -> dict[str, str]:
    """Each team's panel in the console: its stack's name -> its round's state (as the page holds them)."""
    teams = driver.execute_script("return window.blackoutConsole.teams") or []
    return {t["stack"]: (t["exercise"] or {}).get("state", "") for t in teams}


@pytest.mark.long  # minutes of real rounds: `make test-long` (CI runs it), not the 15-minute suite
@pytest.mark.skipif(len(cpus.available()) < 2, reason="pins one CPU per team: needs 2 CPUs")
def test_two_teams_play_one_round_side_by_side_and_share_one_leaderboard(tmp_path):
    config = held_round(tmp_path, round_s=300)
    board = tmp_path / "teams"
    started = blackout(
        "workshop",
        "start",
        "--teams",
        ",".join(TEAMS),
        "--config",
        str(config),
        "--round-id",
        "round-1",
        "--bind",
        "127.0.0.1",  # the rooms' own socket (a LAN address in a real room; tests keep to the loopback)
        "--cpus-per-team",
        "1",
        "--board",
        str(board),
    )
    driver = None
    pids: list[int] = []
    try:
        assert started.returncode == 0, started.stderr
        pids = team_stack_pids(team_control(board, team) for team in TEAMS)
        links = dict(re.findall(r"^  (red|blue): (http://127\.0\.0\.1:\d+/room\?code=\S+)", started.stdout, re.M))
        assert set(links) == set(TEAMS), started.stdout
        assert "dc-power-loss" not in started.stdout  # the links, not the answer

        # each team's stack runs on its own CPU: every process of it, as the kernel says
        for team, cpu in zip(TEAMS, cpus.available()[:2], strict=True):
            pid = team_control(board, team)["pid"]
            family = poll(lambda pid=pid: [p for p in cpus.stack_pids(pid) if p != pid], 60, f"{team}: no services")
            assert {tuple(cpus.allowed(p) or []) for p in [pid, *family]} <= {(cpu,), ()}, team

        # each link opens its own team's exercise only; a team's code is refused by the other's stack; the
        # rooms' socket takes no control token, the control API's own does
        codes = {team: link.split("code=")[1] for team, link in links.items()}
        urls = {team: link.split("/room")[0] for team, link in links.items()}
        for team in TEAMS:
            control = team_control(board, team)
            assert control["room_url"] == urls[team] != control["url"]
            instructor = {"Authorization": f"Bearer {control['token']}"}
            assert get(urls[team] + "/exercise", headers=instructor).status_code == 403
            assert get(urls[team] + "/status", headers=instructor).status_code == 403
            assert get(control["url"] + "/status", headers=instructor).status_code == 200
        for team, other in (("red", "blue"), ("blue", "red")):
            mine = get(urls[team] + "/exercise", headers={"Authorization": f"Bearer {codes[team]}"})
            assert mine.status_code == 200 and mine.json()["team"] == team
            assert get(urls[other] + "/exercise", headers={"Authorization": f"Bearer {codes[team]}"}).status_code == 401
            assert get(urls[team] + "/status", headers={"Authorization": f"Bearer {codes[team]}"}).status_code == 403

        now = status(board)
        assert now["round_id"] == "round-1" and now["state"] == "playing"
        assert {t["team"]: (t["stack"], t["exercise"]["state"]) for t in now["teams"]} == {
            "red": ("up", "running"),
            "blue": ("up", "running"),
        }
        assert [t["cpus"] for t in now["teams"]] == [[c] for c in cpus.available()[:2]]
        assert {t["team"]: t["room"] for t in now["teams"]} == links

        # both rooms side by side in one browser: one tab each, each stack's cookie beside the other's
        if webdriver is not None and CHROMIUM and DRIVER:
            driver = browser()
            driver.get(links["red"])
            red_tab = driver.current_window_handle
            driver.switch_to.new_window("tab")
            driver.get(links["blue"])
            for team, tab in (("blue", driver.current_window_handle), ("red", red_tab)):
                driver.switch_to.window(tab)
                driver.refresh()  # the link's code is gone from the URL: the cookie alone opens the room
                assert driver.current_url == urls[team] + "/room"
                poll(lambda team=team: room_shows_team(driver, team), 120, f"{team}'s room never showed the team")
                poll(lambda: driver.find_elements("css selector", ".instance.running"), 120, f"{team}: no instances")
                shot(driver, f"room-{team}")
            names = sorted(c["name"] for c in driver.get_cookies())
            assert names == sorted(f"blackout_team_{u.rsplit(':', 1)[1]}" for u in urls.values()), names

            # the game master's console in a third tab (red's stack, the instructor's link first): both teams
            red_control = team_control(board, "red")
            driver.switch_to.new_window("tab")
            console_tab = driver.current_window_handle
            driver.get(f"{red_control['url']}/room?token={red_control['token']}")
            driver.get(f"{red_control['url']}/console")
            poll(lambda: console_states(driver) == {"red": "running", "blue": "running"}, 120, "the console: teams")
            for team in TEAMS:
                panel = driver.find_element("id", f"team-{team}").text
                assert f"team {team}" in panel.lower() and "provisional" in panel and codes[team] in panel, panel
            assert red_control["token"] not in driver.page_source
            shot(driver, "console-two-teams")

            # the game master extends blue's round from its button; blue's own stack says so
            blue_control = team_control(board, "blue")
            seconds = driver.find_element("css selector", "#team-blue .extend .seconds")
            seconds.clear()
            seconds.send_keys("30")
            driver.find_element("css selector", "#team-blue .extend button").click()
            blue_auth = {"Authorization": f"Bearer {blue_control['token']}"}
            poll(
                lambda: get(blue_control["url"] + "/console/exercise", headers=blue_auth).json()["extensions"],
                60,
                "blue's round was never extended",
            )
            poll(lambda: "extended by 30 s" in driver.find_element("id", "team-blue").text, 60, "not shown")
            assert "extended" not in driver.find_element("id", "team-red").text  # one team's round only
            shot(driver, "console-blue-extended")

        # red finds the power loss and restores it; blue does nothing
        poll(lambda: dark(team_control(board, "red")), 240, "the hidden power loss never came")
        declared = red_declares(board)
        assert declared.returncode == 0, declared.stderr
        acted = red_powers_on(board)
        assert acted.returncode == 0, acted.stderr
        if driver is not None:
            driver.switch_to.window(red_tab)
            poll(lambda: "dc-east lost power" in driver.find_element("id", "declarations").text, 120, "not shown")
            shot(driver, "room-red-declared")

        pids = sorted(
            {*pids, *team_stack_pids(team_control(board, team) for team in TEAMS)}
        )  # with dc-east's instances started again by red's power-on
        ended = blackout("workshop", "end", "--board", str(board))
        assert ended.returncode == 0, ended.stderr
        first = json.loads((board / "leaderboard.json").read_text())
        assert [(r["round_id"], [e["team"] for e in r["teams"]]) for r in first] == [("round-1", ["red", "blue"])]
        red_score, blue_score = first[0]["teams"]
        assert red_score["detect_s"] is not None and blue_score["detect_s"] is None
        assert status(board)["state"] == "ended"
        if driver is not None:  # the console: both rounds ended, with their final scores
            driver.switch_to.window(console_tab)
            poll(lambda: console_states(driver) == {"red": "ended", "blue": "ended"}, 60, "the console: not ended")
            assert "(final)" in driver.find_element("id", "team-red").text
            shot(driver, "console-round-ended")

        # round 2 on the same stacks (its id the next one): new links, the old ones stop working
        again = blackout(
            "workshop", "start", "--teams", ",".join(TEAMS), "--config", str(config), "--board", str(board)
        )
        assert again.returncode == 0, again.stderr
        assert "round-2: 2 teams are on call" in again.stdout and "share cores" not in again.stdout, again.stdout
        old = get(urls["red"] + "/exercise", headers={"Authorization": f"Bearer {codes['red']}"})
        assert old.status_code == 401
        assert [t["cpus"] for t in status(board)["teams"]] == [[c] for c in cpus.available()[:2]]
        ended = blackout("workshop", "end", "--down", "--board", str(board))
        assert ended.returncode == 0, ended.stderr
    finally:
        if driver is not None:
            driver.quit()
        down_all(board)
    assert wait_all_gone(pids, timeout_s=30) == []
    assert status(board)["state"] == "ended" and {t["stack"] for t in status(board)["teams"]} == {"down"}
    rounds = json.loads((board / "leaderboard.json").read_text())
    assert [(r["round_id"], sorted(e["team"] for e in r["teams"])) for r in rounds] == [
        ("round-1", ["blue", "red"]),
        ("round-2", ["blue", "red"]),
    ]
    points = {(r["round_id"], e["team"]): e["points"] for r in rounds for e in r["teams"]}

    # two "machines": red's folder on one, blue's on another, and red's copied to both by mistake
    for machine, teams in (("laptop-a", ["red"]), ("laptop-b", ["blue", "red"])):
        for team in teams:
            shutil.copytree(board / team / "exercise", tmp_path / machine / team / "exercise")
    out = tmp_path / "collected"
    laptops = [str(tmp_path / "laptop-a"), str(tmp_path / "laptop-b")]
    merged = blackout("exercise", "leaderboard", "--collect", *laptops, "--out", str(out))
    assert merged.returncode == 0, merged.stderr
    assert "set aside" not in merged.stdout  # the same play twice is one play, not a duplicate to resolve
    collected = json.loads((out / "leaderboard.json").read_text())
    assert [[e["team"] for e in r["teams"]] for r in collected["rounds"]][0] == ["red", "blue"]
    assert {t["team"]: (t["points"], t["rounds"]) for t in collected["total"]} == {
        team: (points[("round-1", team)] + points[("round-2", team)], 2) for team in TEAMS
    }
    assert "## Running total" in (out / "leaderboard.md").read_text()


def test_a_port_block_with_a_taken_port_is_refused_naming_it():
    topology = team_topology(PROFILES / "naive.yaml", "any")
    base = next(b for b in range(30000, 60000, 1000) if _free_block(topology, b))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", base + 2))
        with pytest.raises(UsageError, match=f"port {base + 2} \\(for [a-z-]+\\) is in use"):
            port_block(topology, base)
    ports = sorted(inst.port for _, inst in port_block(topology, base).instances().values())
    assert ports == list(range(base, base + len(ports)))


def _free_block(topology, base: int) -> bool:
    try:
        port_block(topology, base)
        return True
    except UsageError:
        return False


def test_bad_team_lists_and_a_missing_workshop_are_refused_with_exit_2(tmp_path):
    for teams, says in (("red,red", "named twice"), ("Red", "lowercase"), (",", "comma-separated")):
        result = blackout("workshop", "start", "--teams", teams, "--board", str(tmp_path))
        assert result.returncode == 2 and says in result.stderr and "Traceback" not in result.stderr, teams
    for verb in ("status", "end"):
        result = blackout("workshop", verb, "--board", str(tmp_path / "none"))
        assert result.returncode == 2 and "workshop start" in result.stderr, result.stderr
    assert not (tmp_path / "none").exists()
