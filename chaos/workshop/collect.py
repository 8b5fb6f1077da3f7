"""One leaderboard from the score files of several machines (`blackout exercise leaderboard --collect DIR...`).

With one laptop per team, each team's scores are written on its own laptop (runs/teams/<team>/exercise/
<time>-<team>/score.json). The instructor copies those folders (a USB stick, scp) into one place per machine
and collects them: every score.json found under the folders, merged by round id, ranked per round, plus each
team's running total over the rounds.

A team's entries for one round from several files are resolved like this (docs/workshop.md says so too):
- the same play copied twice (same team, round and start time) counts once;
- different plays of one team in one round (it played the round again, or two machines used one team name):
  the best counts, as on one machine's board, and the command names every play it set aside.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chaos.workshop.config import TEAM
from chaos.workshop.draft import SCORE_FILE, write_rounds
from services.common.atomic_file import write_atomically
from services.common.config_files import describe
from services.common.errors import ConfigError, UsageError
from services.common.policy import LIBRARY_NAME


class ScoreEntry(BaseModel):
    """The fields of a score.json (chaos/workshop/draft.py writes it) the leaderboard reads; the rest is kept."""

    model_config = ConfigDict(extra="allow")
    team: str = Field(pattern=TEAM)
    round_id: str = Field("round", pattern=LIBRARY_NAME)
    scenario: str = Field(min_length=1)
    started: float
    points: int = Field(ge=0)
    detect_s: float | None
    mitigate_s: float | None
    localization: float = Field(ge=0, le=1)
    root_cause: bool
    unserved: int = Field(ge=0)
    expected: int = Field(ge=0)


@dataclass
class Collected:
    entries: list[dict[str, Any]]  # one per (team, round): the play that counts
    set_aside: list[str]  # a line per play that does not count, saying why


def read_score(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(str(path), f"cannot be read ({exc.strerror})") from None
    except ValueError as exc:
        raise ConfigError(str(path), f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(str(path), "a score file is a JSON object (team, round_id, scenario, points, ...)")
    try:
        return ScoreEntry.model_validate(data).model_dump()
    except ValidationError as exc:
        raise ConfigError(str(path), describe(exc)) from None


def collect(folders: list[Path]) -> Collected:
    found: list[tuple[Path, dict[str, Any]]] = []
    for folder in folders:
        if not folder.is_dir():
            raise UsageError(f"{folder}: no such folder (copy each machine's runs/teams into one)")
        found += [(path, read_score(path)) for path in sorted(folder.rglob(SCORE_FILE))]
    if not found:
        raise UsageError(f"no {SCORE_FILE} under {', '.join(map(str, folders))}: did the teams end their rounds?")
    plays: dict[tuple[str, str], dict[float, tuple[Path, dict[str, Any]]]] = {}
    for path, entry in found:
        plays.setdefault((entry["team"], entry["round_id"]), {}).setdefault(entry["started"], (path, entry))
    entries, set_aside = [], []
    for (team, round_id), by_start in plays.items():
        ranked = sorted(by_start.values(), key=lambda pe: -pe[1]["points"])
        entries.append(ranked[0][1])
        for path, entry in ranked[1:]:
            set_aside.append(
                f"{team} played {round_id} more than once: {path} ({entry['points']} points) set aside, "
                f"{ranked[0][0]} ({ranked[0][1]['points']}) counts"
            )
    return Collected(entries, set_aside)


def running_total(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each team's points summed over the rounds it played, best first."""
    totals: dict[str, dict[str, Any]] = {}
    for e in entries:
        total = totals.setdefault(e["team"], {"team": e["team"], "points": 0, "rounds": 0})
        total["points"] += e["points"]
        total["rounds"] += 1
    return sorted(totals.values(), key=lambda t: (-t["points"], t["team"]))


def write_collected(collected: Collected, out: Path) -> Path:
    """out/leaderboard.md (a table per round, then the running total) and out/leaderboard.json."""
    out.mkdir(parents=True, exist_ok=True)
    rounds, lines = write_rounds(collected.entries)
    totals = running_total(collected.entries)
    lines += ["## Running total", "", "| rank | team | points | rounds |", "|---|---|---|---|"]
    lines += [f"| {rank} | {t['team']} | {t['points']} | {t['rounds']} |" for rank, t in enumerate(totals, 1)]
    write_atomically(out / "leaderboard.json", json.dumps({"rounds": rounds, "total": totals}, indent=2))
    path = out / "leaderboard.md"
    write_atomically(path, "\n".join(lines) + "\n")
    return path
