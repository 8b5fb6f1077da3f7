"""Held rounds of the library's cards, played over HTTP by three kinds of team on a real stack: the scripted
responder (examples/responder.py), a team that does nothing, and a panicking team that tries the instructor's
Panic (refused: 403) and then spams declarations and allowed levers. The instructor's side (start, end, the
score) goes through the control token, as `blackout exercise start/end` does; each team gets only its link.

Each card is played shortened: the held timeline (`hold.timeline`, what a held round plays) moved so that its
first fault comes FAULT_AT_S into the run (retry-storm: FAULT_AT), then the seed's onset; the run lasts the round."""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from chaos.calibration import FIRST_RATE, calibrate
from chaos.engine.fit import TOPOLOGIES
from chaos.engine.run import PROJECT_ROOT
from chaos.engine.scenario import LIBRARY, Scenario, library, load_scenario
from chaos.faults.model import parse_duration
from chaos.journal import new_run_dir
from chaos.library import LOCAL_SCENARIOS
from chaos.stack import Stack
from chaos.topology import load_topology
from chaos.workshop.config import REMEDIATIONS
from services.common.policy import load_profile

sys.path.insert(0, str(PROJECT_ROOT / "examples"))
from responder import Responder, Team  # an example program, not a package

PROFILES = PROJECT_ROOT / "profiles"
CARDS = tuple(scenario.name for scenario in library())  # every library scenario has a card
FAULT_AT_S = 3.0  # the held timeline's first fault, into the run (the seed's onset comes on top)
# ...but retry-storm's stays at its own 20 s: the users' first logins must be over before auth stalls (a few
# seconds in, a naive stack on a busy machine is still logging users in: no steady state to compare with)
FAULT_AT = {"retry-storm": 20.0}
SPAM_EVERY_S = 3.0
SLACK_S = 40.0  # the scenario's own duration past the round: room for its unheld timeline to validate
Player = Callable[[str, float], dict[str, Any]]  # (the team's link, seconds to play) -> what it did


@contextmanager
def stack(runs: Path, profile: str = "naive") -> Iterator[tuple[str, str, Path]]:
    """A fragile stack serving its control API, as `blackout up` builds it: (url, control token, runs folder)."""
    with Stack(runs, serve=True, runs=True) as built:
        built.open(new_run_dir(runs, "up-fragile"))
        built.power_up(load_topology(TOPOLOGIES / "fragile.yaml").with_any_ports(), PROFILES / f"{profile}.yaml")
        built.arm(load_profile(PROFILES / f"{profile}.yaml"), random.Random(1))
        assert built.server is not None
        yield built.server.url, built.server.token, runs


def held_variant(runs: Path, name: str, round_s: float, users: int | None) -> str:
    """The card's scenario, its held timeline moved to start at FAULT_AT_S, in the stack's own library; ``users``:
    None plays the card's own load."""
    data = yaml.safe_load((LIBRARY / f"{name}.yaml").read_text())
    hold = data["hold"]
    first = min(parse_duration(step["at"]) for step in hold["timeline"])
    for timeline in (data["timeline"], hold["timeline"]):
        for step in timeline:
            step["at"] = f"{parse_duration(step['at']) - first + FAULT_AT.get(name, FAULT_AT_S):g}s"
    # the unheld timeline must leave room to see recovery (validated); the instructor ends the round at round_s
    data["duration"] = f"{round_s + SLACK_S:g}s"
    if users is not None:  # arriving as the held round's load says (retry-storm's 2 a second: faster, logins storm)
        spawn_rate = (hold.get("load") or data["load"]).get("spawn_rate", 10)
        data["load"] = {"users": users, "spawn_rate": spawn_rate}
    folder = runs / LOCAL_SCENARIOS
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}-held.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return f"{name}-held"


def sized_to_the_machine(card: Scenario) -> bool:
    """Whether the card's held round plays a load sized to `blackout calibrate`'s figures (retry-storm's)."""
    return ((card.hold.load if card.hold else None) or card.load).capacity is not None


def play_round(
    url: str, token: str, runs: Path, name: str, player: Player, *, seed: int, round_s: float, users: int | None
) -> dict[str, Any]:
    """One held round of card ``name``: the instructor starts it, ``player`` plays from the team's link until
    the round's clock reaches ``round_s``, the instructor ends it. The end's view: score, hidden fault, actions.
    ``users`` None: the card's own load; one sized to the machine is calibrated first, as a trainer does."""
    scenario = held_variant(runs, name, round_s, users)
    if users is None and sized_to_the_machine(load_scenario(runs / LOCAL_SCENARIOS / f"{scenario}.yaml")):
        # measured now, on the machine as the round will have it: logins, and one step of the actions' search
        calibrate(PROFILES / "naive.yaml", runs, max_rate=FIRST_RATE)
    instructor = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    config = {
        "team": "cards",
        "scenario": scenario,
        "seed": seed,
        "onset": {"min": 3, "max": 5},
        "hold": True,
        "round": round_s,
        "allow": list(REMEDIATIONS),
    }
    if users is not None:
        config["users"] = users
    started = instructor.post("/exercise", json=config)
    if started.status_code != 201:
        raise RuntimeError(f"{name}: the exercise did not start: {started.status_code} {started.text}")
    link = f"{url}/room?code={started.json()['team_code']}"
    try:
        played = player(link, round_s)
        while instructor.get("/exercise").json()["clock_s"] < round_s:
            time.sleep(0.5)  # every team is scored over the same round
    finally:
        ended = instructor.post("/exercise/end")
    if ended.status_code != 200:
        raise RuntimeError(f"{name}: the exercise did not end: {ended.status_code} {ended.text}")
    return {**ended.json(), "played": played}


def responder(link: str, round_s: float) -> dict[str, Any]:
    return Responder(Team(link)).play(budget_s=round_s)


class WrongDataCenter(Responder):
    """The responder's diagnosis and levers, but every declaration names the other data center's side: dc-east
    for dc-west, views-west for views-east (a team misreading which building is dark). It acts as well as the
    responder; only its localization may differ."""

    def pull(self, symptom: str, where: str, fault: str, action: str, target: str | dict[str, Any]) -> None:
        super().pull(symptom, mirrored(where), fault, action, target)


def mirrored(place: str) -> str:
    """The other data center's name for a place: east <-> west (the fragile and resilient topologies' two)."""
    return "-".join({"east": "west", "west": "east"}.get(part, part) for part in place.split("-"))


def wrong_data_center(link: str, round_s: float) -> dict[str, Any]:
    return WrongDataCenter(Team(link)).play(budget_s=round_s)


def do_nothing(link: str, round_s: float) -> dict[str, Any]:
    return {}


def panic_spammer(link: str, round_s: float) -> dict[str, Any]:
    """Panics (refused), then every SPAM_EVERY_S declares something and pulls an allowed lever at random."""
    team = Team(link)
    rng = random.Random(0)
    refused = [team.post("/panic").status_code, team.act("panic", "all")["status"]]
    view = team.exercise()
    words, instances = view["vocabulary"], team.get("/room/state")["instances"]
    levers: list[tuple[str, str]] = [("restart-instance", i) for i in instances]
    levers += [(a, dc) for dc in ("dc-east", "dc-west") for a in ("power-on", "power-off", "drain")]
    levers += [("profile", "naive"), ("shed-logins", "1")]
    deadline = time.monotonic() + round_s
    while time.monotonic() < deadline and team.exercise()["state"] == "running":
        team.declare(rng.choice(words["symptom"]), rng.choice(words["where"]), rng.choice(words["fault"]), "panic!")
        if team.exercise()["actions_left"] > 0:
            team.act(*rng.choice(levers))
        time.sleep(SPAM_EVERY_S)
    return {"panic": refused}


TEAMS: dict[str, Player] = {"responder": responder, "nothing": do_nothing, "spam": panic_spammer}
