"""Benchmark: every card is winnable, and the score is fair. Each of the library's seven cards is played as a
held round (naive profile, fragile topology, short rounds) by the scripted responder (examples/responder.py),
a team that does nothing and a panicking team that spams (benchmarks/support/card_rounds.py), on the same seed;
prints one row per card: mitigated?, time to mitigate, the three scores.
Run:
    .venv/bin/python benchmarks/responder_cards.py [--cards dc-power-loss,brownout] [--round 90] [--users 8]
A card sized to the machine (retry-storm: 5x the calibrated logins) plays its own load unless --users is given,
calibrated just before each of its rounds; give it time: --cards retry-storm --round 240.
Goals: the responder mitigates every card and scores above doing nothing and above panicking.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from support.card_rounds import CARDS, TEAMS, play_round, sized_to_the_machine, stack

from chaos.engine.scenario import load_scenario

USERS = 8  # a card's users, unless sized to the machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cards", default=",".join(CARDS))
    parser.add_argument("--teams", default=",".join(TEAMS))
    parser.add_argument("--round", type=float, default=90.0, help="seconds each round lasts (every team alike)")
    parser.add_argument("--users", type=int, help=f"users per round (default: {USERS}, or the card's own sizing)")
    parser.add_argument("--seed", type=int, default=3)
    opts = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="cards-") as tmp, stack(Path(tmp) / "runs") as (url, token, runs):
        for card in opts.cards.split(","):
            row: dict[str, object] = {"card": card}
            sized = opts.users is None and sized_to_the_machine(load_scenario(card))
            users = None if sized else opts.users or USERS
            for team in opts.teams.split(","):
                view = play_round(url, token, runs, card, TEAMS[team], seed=opts.seed, round_s=opts.round, users=users)
                score = view["score"]
                row[team] = score["points"]
                if team == "responder":
                    row["mitigated"] = view["played"]["mitigated"]
                    row["ttm_s"] = score["mitigate_s"]
                    row["parts"], row["penalties"] = score["parts"], score["penalties"]
                    row["log"] = view["played"]["log"]
                print(json.dumps({"card": card, "team": team, "score": score}), flush=True)
            rows.append(row)
    print("\n| card | mitigated | time to mitigate (s) | responder | do nothing | panic + spam |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        cells = [r["card"], r.get("mitigated"), r.get("ttm_s"), r.get("responder"), r.get("nothing"), r.get("spam")]
        print("| " + " | ".join(str(c) for c in cells) + " |")
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
