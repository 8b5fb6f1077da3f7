"""The score is fair, on a real stack (naive, fragile, a short held round of dc-power-loss, the same seed): the
scripted responder (examples/responder.py), playing from the team's link alone, mitigates the held fault and
scores above a team that does nothing and above a panicking team, whose Panic is refused. While the round runs,
nothing the team reads says how long after the fault its declaration came.

Three rounds of ROUND_S on one stack: ~2 minutes. benchmarks/responder_cards.py plays all seven cards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.card_rounds import Team, do_nothing, panic_spammer, play_round, responder, stack

ROUND_S = 40.0
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


@pytest.mark.long  # minutes of real rounds: `make test-long` (CI runs it), not the 15-minute suite
def test_the_responder_mitigates_a_held_round_and_outscores_doing_nothing_and_panicking(served):
    url, token, runs = served
    scores = {}
    for team, player in {
        "responder": responder_checking_what_the_team_reads,
        "nothing": do_nothing,
        "spam": panic_spammer,
    }.items():
        view = play_round(url, token, runs, "dc-power-loss", player, seed=SEED, round_s=ROUND_S, users=USERS)
        scores[team] = view["score"]
        if team == "responder":
            assert view["played"]["mitigated"], view["played"]["log"]
            assert view["score"]["mitigate_s"] is not None and view["score"]["localization"] == 1.0
        if team == "spam":
            assert view["played"]["panic"] == [403, 403]  # Panic is the instructor's lever
            assert view["score"]["false_alarms"] or view["score"]["localization"] < 1.0
    points = {team: score["points"] for team, score in scores.items()}
    print(points)
    assert points["responder"] > points["nothing"] and points["responder"] > points["spam"], scores
