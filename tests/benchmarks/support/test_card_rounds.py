"""The score is fair, on a real stack (naive, fragile, a short held round of dc-power-loss, the same seed): the
scripted responder (examples/responder.py), playing from the team's link alone, mitigates the held fault and
scores above a team that does nothing and above a panicking team, whose Panic is refused; a team that pulls the
same levers but declares the other data center loses its localization points. While the round runs, nothing
the team reads says how long after the fault its declaration came.

Four rounds of ROUND_S on one stack: ~5 minutes. benchmarks/responder_cards.py plays all seven cards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.card_rounds import Team, do_nothing, panic_spammer, play_round, responder, stack, wrong_data_center

ROUND_S = 60.0  # a busy machine may take 20 s to log the users in and bring the fault
# retry-storm: its users' arrival (2 a second: up to 2 minutes on a quiet machine, the load sized to it), a 30-s
# stall, a storm outliving it, the responder's rungs (30 s each: a deploy, then a restart), every user's login
STORM_ROUND_S = 360.0
USERS = 6
SEED = 3


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    with stack(tmp_path_factory.mktemp("cards") / "runs") as built:
        yield built


def responder_checking_what_the_team_reads(link: str, round_s: float) -> dict[str, Any]:
    """The responder; then, the round still running, what the team reads after its declarations."""
    played = responder(link, round_s)
    team = Team(link)
    view = team.exercise()
    assert view["state"] == "running" and view["declarations"], view
    assert view["detected_after_s"] is None and all(d["names_target"] is None for d in view["declarations"])
    state = json.dumps(team.get("/room/state"))
    assert "after the fault" not in json.dumps(view) + state and 'detected_after_s": null' in state
    return played


@pytest.fixture(scope="module")
def rounds(served: tuple[str, str, Path]) -> dict[str, dict[str, Any]]:
    """One held round of dc-power-loss per team, on the same seed: the end's view of each (its score)."""
    url, token, runs = served
    players = {
        "responder": responder_checking_what_the_team_reads,
        "nothing": do_nothing,
        "spam": panic_spammer,
        "wrong-dc": wrong_data_center,
    }
    return {
        team: play_round(url, token, runs, "dc-power-loss", player, seed=SEED, round_s=ROUND_S, users=USERS)
        for team, player in players.items()
    }


@pytest.mark.long  # minutes of real rounds: `make test-long` (CI runs it), not the 15-minute suite
@pytest.mark.timeout(900)  # the first test to use `rounds` plays its four rounds in its setup
def test_the_responder_mitigates_a_held_round_and_outscores_doing_nothing_and_panicking(rounds):
    scores = {team: view["score"] for team, view in rounds.items()}
    view = rounds["responder"]
    assert view["played"]["mitigated"], view["played"]["log"]
    assert view["score"]["mitigate_s"] is not None and view["score"]["localization"] == 1.0
    assert rounds["spam"]["played"]["panic"] == [403, 403]  # Panic is the instructor's lever
    assert scores["spam"]["false_alarms"] or scores["spam"]["localization"] < 1.0
    points = {team: score["points"] for team, score in scores.items()}
    print(points)
    assert points["responder"] > points["nothing"] and points["responder"] > points["spam"], scores


@pytest.mark.long
@pytest.mark.timeout(900)  # run alone, it plays the four rounds in its setup
def test_a_team_that_declares_the_wrong_data_center_loses_its_localization_points(rounds):
    right, wrong = rounds["responder"], rounds["wrong-dc"]
    assert wrong["played"]["mitigated"], wrong["played"]["log"]  # the same levers: it fixed it as well
    assert [d["where"] for d in wrong["declarations"]] and all(
        d["where"] == "dc-west" for d in wrong["declarations"]
    ), wrong["declarations"]  # dc-east is the dark one; it named the other
    assert wrong["score"]["diagnosis"]["where"] == "dc-west" and wrong["score"]["root_cause"], wrong["score"]
    assert wrong["score"]["localization"] == 0.0 and wrong["score"]["parts"]["localize"] == 0, wrong["score"]
    assert right["score"]["parts"]["localize"] == 150 > wrong["score"]["parts"]["localize"], right["score"]


# Quiet (2026-12-05, nothing else running): 2 of 2, each a deploy then a restart of auth-east. On the shared machine
# (a benchmark queue beside it): 2 of 3; in the third, at load average 58, the room's API did not answer the
# responder within 30 s (httpx.ReadTimeout).
@pytest.mark.long
@pytest.mark.timeout(900)  # a calibration, then a round of STORM_ROUND_S
def test_the_responder_clears_a_held_retry_storm(served):
    """retry-storm held, at its own load, 5x the logins this machine completes (calibrated just before: a storm
    that outlives the stall; test_held_rounds checks it stays down without a lever): the responder, blind to the
    card, gets users served again before the round ends."""
    url, token, runs = served
    view = play_round(url, token, runs, "retry-storm", responder, seed=SEED, round_s=STORM_ROUND_S, users=None)
    played, score = view["played"], view["score"]
    print(json.dumps({"score": score, "log": played["log"]}))
    assert score["users_hurt"], score  # the storm came
    assert played["mitigated"] and score["mitigate_s"] is not None, played["log"]
