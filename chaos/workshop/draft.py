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
from chaos.workshop.hidden import CONTROL, HiddenFault
from services.common.atomic_file import write_atomically

SCORE_FILE = "score.json"
SHOWN = {
    EventName.POWER_OFF,
    EventName.POWER_ON,
    EventName.FAULT_ON,
    EventName.FAULT_OFF,
    EventName.PHASE,
    EventName.RECOVERED,
    EventName.RELAPSED,
    EventName.PANIC,
    EventName.PROFILE,
    EventName.EXERCISE_DETECT,
    EventName.EXERCISE_ACT,
    EventName.EXERCISE_HINT,
    EventName.PAGE,
    EventName.PAGE_ACK,
    EventName.KILL_INSTANCE,
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
    actions: list[dict[str, Any]]
    hints: list[dict[str, Any]]
    events: list[dict[str, Any]]
    roles: dict[str, str]
    status_updates: list[dict[str, Any]]
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
        "Roles: "
        + (", ".join(f"{slot.replace('_', ' ')}: {name}" for slot, name in ex.roles.items() if name) or "not set"),
        "",
        "## What happened (revealed)",
        "",
        f"**{hidden.title}** (scenario `{hidden.scenario}`): " + _when(ex),
        "",
        f"What to take away: {hidden.learn}",
        "",
        "## Timers (from the fault's onset)",
        "",
        "| timer | seconds |",
        "|---|---|",
        f"| time to acknowledge the page | {_ack(s)} |",
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
        f"- false alarms (declared before the fault, or in a round without one): {s['false_alarms']}",
        f"- harmful actions (users' success fell after them): {', '.join(s['harmful']) or 'none'}",
        "",
        f"**Score: {s['points']}** of {s['out_of']} (docs/workshop.md states the formula)",
        "",
        "| part | points |",
        "|---|---|",
        *[f"| {name} | {points} |" for name, points in s["parts"].items()],
        *[f"| {name} | n/a ({why}) |" for name, why in s["not_scored"].items()],
        *[f"| {name} | -{points} |" for name, points in s["penalties"].items() if points],
        "",
        *_beside_the_card(ex),
        "",
        "## Timeline",
        "",
        "| clock | who | what |",
        "|---|---|---|",
    ]
    lines += [f"| {e['t'] - ex.started:7.1f}s | {who} | {what} |" for e, who, what in _timeline(ex)]
    lines += ["", "## The team's declarations", ""]
    lines += [f"- {d['t'] - ex.started:.0f}s: {_declared(d)}" for d in ex.declarations] or ["- none"]
    lines += ["", "## Status updates (as sent)", ""]
    lines += [
        f"- {u['t'] - ex.started:.0f}s ({time.strftime('%H:%M:%S', time.localtime(u['t']))})"
        + (f" {u['by']}" if u["by"] else "")
        + f": {u['text']}"
        for u in ex.status_updates
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
    card = hidden.card or {}
    lines += ["", "## For the debrief (fill in together)", ""]
    lines += [f"- {q}" for q in card.get("debrief", [])]
    lines += [
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
            "scenario": CONTROL if hidden.control else hidden.scenario,
            "round_id": ex.config.round_id,
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
            rows.append((e, "team", f"declared: {_declared(e)}"))
        elif kind == EventName.EXERCISE_HINT:
            rows.append((e, "team", f"took hint {e.get('n')} (-{e.get('cost')})"))
        elif kind == EventName.PAGE:
            rows.append((e, "pager", f"paged: {e.get('text', '')}"))
        elif kind == EventName.PAGE_ACK:
            rows.append((e, "team", f"acknowledged the page after {e.get('after_s')} s"))
        elif kind == EventName.EXERCISE_ACT:
            rows.append((e, "team", f"{e.get('action')} {e.get('target') or ''} ({e.get('status')})"))
        else:
            detail = e.get("instance") or e.get("dc") or e.get("phase") or e.get("id") or e.get("profile") or ""
            if kind == EventName.FAULT_ON:
                detail = json.dumps(e.get("action"))
            rows.append((e, "system", f"{kind} {detail}".strip()))
    return rows


def write_leaderboard(board: Path) -> Path:
    """Per round: the teams that played under ``board`` (board/<team>/exercise/<time>-<team>/score.json, or a
    single stack's board/exercise/...) ranked within each round id and scenario, never across scenarios; a team
    that played one round twice keeps its best."""
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
    rounds: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for entry in sorted(scores, key=lambda e: e["started"]):
        best = rounds.setdefault((entry.get("round_id", "round"), entry["scenario"]), {})
        if entry["team"] not in best or entry["points"] > best[entry["team"]]["points"]:
            best[entry["team"]] = entry
    lines = ["# Leaderboard", ""]
    ranked_rounds = []
    for (round_id, scenario), best in sorted(rounds.items(), key=lambda kv: min(e["started"] for e in kv[1].values())):
        ranked = sorted(
            best.values(), key=lambda e: (-e["points"], e["detect_s"] if e["detect_s"] is not None else 1e9)
        )
        ranked_rounds.append({"round_id": round_id, "scenario": scenario, "teams": ranked})
        lines += [
            f"## Round {round_id}: {scenario}",
            "",
            "| rank | team | points | ack | detect | localized | root cause | mitigate | unserved requests |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for rank, e in enumerate(ranked, 1):
            failed = f"~{e['unserved']}/{e['expected']}" if e["expected"] else "-"
            lines.append(
                f"| {rank} | {e['team']} | {e['points']} | {_ack(e)} | {_s(e['detect_s'])} | "
                f"{e['localization']:g} | {'yes' if e['root_cause'] else 'no'} | {_s(e['mitigate_s'])} | {failed} |"
            )
        lines.append("")
    return ranked_rounds, lines


def _beside_the_card(ex: PlayedExercise) -> list[str]:
    """The card's model answer beside what the team did, then what the card said to look for and the hints."""
    assert ex.result is not None
    s, card = ex.result["score"], ex.hidden.card or {}
    answer, diagnosis = card.get("answer"), s["diagnosis"] or {}
    lines = ["## The card beside the team", ""]
    if not card:
        return [*lines, "This scenario has no card.", ""]
    done = "; ".join(f"{a['action']} {a['target'] or ''}".strip() for a in ex.actions if a["status"] == "succeeded")
    lines += ["| | model answer | the team |", "|---|---|---|"]
    if answer is None:  # a control round: the right answer is no incident
        lines.append(f"| declaration | none: there was no fault | {_declared(diagnosis) if diagnosis else 'none'} |")
    else:
        lines += [
            f"| what users see | {answer['symptom']} | {diagnosis.get('symptom', '-')} |",
            f"| where | {answer['where']} | {diagnosis.get('where', '-')} (localization {s['localization']:g}) |",
            f"| fault type | {answer['fault']} | {diagnosis.get('fault', '-')} "
            f"({'right' if s['root_cause'] else 'wrong'}) |",
            f"| time to detect | {answer['detect_s']:g} s | {_s(s['detect_s'])} |",
            f"| time to mitigate | {answer['mitigate_s']:g} s | {_s(s['mitigate_s'])} |",
            f"| actions | {'; '.join(answer['actions'])} | {done or 'none'} |",
            "",
            f"In one line: {answer['summary']}",
        ]
    lines += ["", "What the card says to look for:", ""]
    lines += [f"- {item}" for item in card.get("look_for", [])]
    lines += ["", f"Hints taken: {len(ex.hints)} of {len(card.get('hints', []))}", ""]
    lines += [f"{h['n']}. {h['text']} (-{h['cost']}, at {h['t'] - ex.started:.0f}s)" for h in ex.hints]
    return lines


def _when(ex: PlayedExercise) -> str:
    assert ex.result is not None
    if ex.hidden.control:
        return "there was no fault; the users of this scenario were served all along (a control round)."
    if ex.result["onset"]:
        return f"the first fault came {ex.result['onset'] - ex.started:.0f} s into the exercise."
    return "the first fault never came (the round ended before it)."


def _declared(d: dict[str, Any]) -> str:
    said = f"{d.get('symptom')} at {d.get('where')}, {d.get('fault')}"
    return said + (f' ("{d["text"]}")' if d.get("text") else "")


def _ack(s: dict[str, Any]) -> str:
    if not s.get("paged"):
        return "no page"
    return "never" if s.get("ack_s") is None else f"{s['ack_s']:g} s"


def _s(value: float | None) -> str:
    return "never" if value is None else f"{value:g} s"


def _write_json(path: Path, data: object) -> None:
    _write_text(path, json.dumps(data, indent=2))


def _write_text(path: Path, text: str) -> None:
    """Atomic: two teams ending at once each write a whole board, never a torn one."""
    write_atomically(path, text)
