"""Benchmark: every card is winnable, and the score is fair. Each of the library's seven cards is played as a
held round (naive profile, fragile topology, short rounds) by the scripted responder (examples/responder.py),
a team that does nothing and a panicking team that spams (benchmarks/support/card_rounds.py), on the same seed;
prints one row per card: mitigated?, time to mitigate, the three scores.
Run:
    .venv/bin/python benchmarks/responder_cards.py [--cards dc-power-loss,brownout] [--round 90] [--users 8]
Goals: the responder mitigates every card and scores above doing nothing and above panicking.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from support.card_rounds import CARDS, TEAMS, play_round, stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cards", default=",".join(CARDS))
    parser.add_argument("--teams", default=",".join(TEAMS))
    parser.add_argument("--round", type=float, default=90.0, help="seconds each round lasts (every team alike)")
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--seed", type=int, default=3)
    opts = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="cards-") as tmp, stack(Path(tmp) / "runs") as (url, token, runs):
        for card in opts.cards.split(","):
            row: dict[str, object] = {"card": card}
            for team in opts.teams.split(","):
                view = play_round(
                    url, token, runs, card, TEAMS[team], seed=opts.seed, round_s=opts.round, users=opts.users
                )
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
