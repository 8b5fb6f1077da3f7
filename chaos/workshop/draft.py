"""What `blackout exercise end` leaves: the team's post-mortem draft (what happened, the timers, the impact,
the team's declarations and actions on the run's timeline, blank sections for the debrief) and the
leaderboard of every team that played under the same folder."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Protocol

from chaos.journal import EventName
from chaos.rundir import NOTES, PICTURE
from chaos.workshop.config import ExerciseConfig
from chaos.workshop.hidden import HiddenFault
from services.common.atomic_file import write_atomically

SCORE_FILE = "score.json"
SHOWN = {
    EventName.POWER_OFF,
    EventName.POWER_ON,
    EventName.FAULT_ON,
    EventName.FAULT_OFF,
    EventName.PHASE,
    EventName.RECOVERED,
    EventName.PANIC,
    EventName.PROFILE,
    EventName.EXERCISE_DETECT,
    EventName.EXERCISE_ACT,
    EventName.END,
    EventName.ABORTED,
}


class PlayedExercise(Protocol):
    """What a draft reads of an exercise (chaos/workshop/exercise.py, which writes it: typed here, not imported)."""

    config: ExerciseConfig
    seed: int
    started: float
    hidden: HiddenFault
    declarations: list[dict[str, Any]]
    events: list[dict[str, Any]]
    result: dict[str, Any] | None


def write_draft(ex: PlayedExercise, folder: Path) -> Path:
    assert ex.result is not None
    s, hidden = ex.result["score"], ex.hidden
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# Post-mortem draft: team {ex.config.team}",
        "",
        f"Exercise started {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(ex.started))}, seed {ex.seed}, "
        f"profile at the start: {ex.config.profile}.",
        "",
        "## What happened (revealed)",
        "",
        f"**{hidden.title}** (scenario `{hidden.scenario}`): the first fault came "
        + (
            f"{ex.result['onset'] - ex.started:.0f} s into the exercise."
            if ex.result["onset"]
            else "never (ended before it)."
        ),
        "",
        f"What to take away: {hidden.learn}",
        "",
        "## Timers (from the fault's onset)",
        "",
        "| timer | seconds |",
        "|---|---|",
        f"| time to detect | {_s(s['detect_s'])} |",
        f"| time to mitigate (users back above the hypothesis) | {_s(s['mitigate_s'])} |",
        f"| time to recover | {_s(s['recover_s'])} |",
        "",
        "## Impact",
        "",
        f"- users hurt (the hypothesis deviated): {'yes' if s['users_hurt'] else 'no'}",
        f"- requests after the onset: {s['requests']} answered, {s['failed']} of them failed; at the baseline's "
        f"rate users expected ~{s['expected']}, so ~{s['unserved']} were not served (failed or never answered)",
        "- lost writes: "
        + ("not measured (needs the data-integrity audit)" if s["lost_writes"] is None else str(s["lost_writes"])),
        f"- false alarms (declared before the fault): {s['false_alarms']}",
        "",
        f"**Score: {s['points']}** (see docs/workshop.md for how it is computed)",
        "",
        "## Timeline",
        "",
        "| clock | who | what |",
        "|---|---|---|",
    ]
    lines += [f"| {e['t'] - ex.started:7.1f}s | {who} | {what} |" for e, who, what in _timeline(ex)]
    declared = [d for d in ex.declarations]
    lines += ["", "## The team's declarations", ""]
    lines += [
        f'- {d["t"] - ex.started:.0f}s: "{d["text"]}"' + (" (names the fault's target)" if d["names_target"] else "")
        for d in declared
    ] or ["- none"]
    lines += ["", "## Evidence", ""]
    if ex.result.get("run_dir"):
        run_dir = Path(ex.result["run_dir"])
        lines.append(f"- the run: `{run_dir}` (journal.json, requests.csv, logs/)")
        for name in (NOTES, PICTURE):
            if (run_dir / name).exists():
                lines.append(f"- {name}: `{run_dir / name}`")
    if ex.result.get("run_error"):
        lines.append(f"- the run failed: {ex.result['run_error']}")
    lines += [
        "",
        "## For the debrief (fill in together)",
        "",
        "- What did we see first, and where?",
        "- What did we believe, and what changed our mind?",
        "- What helped us mitigate? What slowed us down?",
        "- Where did we get lucky?",
        "- Action items (owner, date):",
        "",
    ]
    path = folder / "postmortem-draft.md"
    path.write_text("\n".join(lines))
    _write_json(
        folder / SCORE_FILE,
        {
            "team": ex.config.team,
            "started": ex.started,
            "scenario": hidden.scenario,
            "seed": ex.seed,
            "draft": str(path),
            **s,
        },
    )
    return path


def _timeline(ex: PlayedExercise) -> list[tuple[dict[str, Any], str, str]]:
    rows: list[tuple[dict[str, Any], str, str]] = []
    last_met: object = "unset"
    for e in sorted(ex.events, key=lambda e: e.get("t", 0)):
        kind = e.get("event")
        if kind == EventName.HYPOTHESIS:
            if e.get("met") != last_met:  # only when the verdict changes: a readable timeline
                last_met = e.get("met")
                rows.append(
                    (
                        e,
                        "users",
                        {True: "hypothesis holds", False: "hypothesis deviates", None: "no data"}[e.get("met")],
                    )
                )
            continue
        if kind not in SHOWN:
            continue
        if kind == EventName.EXERCISE_DETECT:
            rows.append((e, "team", f'declared: "{e.get("text", "")}"'))
        elif kind == EventName.EXERCISE_ACT:
            rows.append((e, "team", f"{e.get('action')} {e.get('target') or ''} ({e.get('status')})"))
        else:
            detail = e.get("dc") or e.get("phase") or e.get("id") or e.get("profile") or ""
            if kind == EventName.FAULT_ON:
                detail = json.dumps(e.get("action"))
            rows.append((e, "system", f"{kind} {detail}".strip()))
    return rows


def write_leaderboard(board: Path) -> Path:
    """Every team's best score under ``board`` (board/<team>/exercise/<time>-<team>/score.json, or a single
    stack's board/exercise/...), best first."""
    scores = []
    for path in [*board.glob(f"*/exercise/*/{SCORE_FILE}"), *board.glob(f"exercise/*/{SCORE_FILE}")]:
        try:
            scores.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue  # a team's file being written right now: it joins the next board
    ranked_rounds, lines = write_rounds(scores)
    _write_json(board / "leaderboard.json", ranked_rounds)
    path = board / "leaderboard.md"
    _write_text(path, "\n".join(lines))
    return path


def write_rounds(scores: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The rounds of ``scores`` ranked (the leaderboard's JSON) and the markdown lines of their tables; also
    chaos/workshop/collect.py's, for the scores of several machines."""
    best: dict[str, dict[str, Any]] = {}
    for entry in scores:
        if entry["team"] not in best or entry["points"] > best[entry["team"]]["points"]:
            best[entry["team"]] = entry
    ranked = sorted(best.values(), key=lambda e: (-e["points"], e["detect_s"] if e["detect_s"] is not None else 1e9))
    lines = [
        "# Leaderboard",
        "",
        "| rank | team | points | detect | mitigate | recover | unserved requests | scenario |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for rank, e in enumerate(ranked, 1):
        failed = f"~{e['unserved']}/{e['expected']}" if e["expected"] else "-"
        lines.append(
            f"| {rank} | {e['team']} | {e['points']} | {_s(e['detect_s'])} | {_s(e['mitigate_s'])} | "
            f"{_s(e['recover_s'])} | {failed} | {e['scenario']} |"
        )
    lines.append("")
    return ranked, lines


def _s(value: float | None) -> str:
    return "never" if value is None else f"{value:g} s"


def _write_json(path: Path, data: object) -> None:
    _write_text(path, json.dumps(data, indent=2))


def _write_text(path: Path, text: str) -> None:
    """Atomic: two teams ending at once each write a whole board, never a torn one."""
    write_atomically(path, text)
