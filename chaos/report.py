"""Per-phase summary of a run, built from the run directory alone.

Inputs (in ``run_dir``):

* ``journal.jsonl`` -- the run's events (read by ``chaos/journal.py``); phase marks are
  ``{"event": "phase", "phase": "baseline"|"outage"|"recovery"}``, the run's end is ``{"event": "end"}``.
* ``requests.csv`` -- what users saw (read by ``loadtest/requests_reader.py``); its symptoms are those of
  ``services/common/symptoms.py``.

A request belongs to the phase during which it *started* (or to the outage, when it was in flight as the outage
began: ``by_phase``); rows before the first phase mark (warm-up) and at or after the end mark are left out. Percentiles use the nearest-rank method over every request
of the group, failures included. Rendering lives in ``chaos/report_render.py``.
"""

from __future__ import annotations

import bisect
import csv
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos import amplification
from chaos.journal import Event, EventName, phase_marks, read_events
from chaos.report_model import ACTION_ORDER, ActionStats, PhaseSummary, RunSummary, percentile
from chaos.rundir import JOURNAL, PHASES_FILE, REQUESTS_FILE, SUMMARY_FILE
from loadtest.requests_reader import RequestRow, read_all
from services.common.errors import ConfigError
from services.common.symptoms import NAMES


def _rate(ok: int, count: int) -> float | None:
    return ok / count if count else None


def action_stats(rows: Sequence[RequestRow]) -> ActionStats:
    latencies = [r.latency_ms for r in rows]
    ok = sum(1 for r in rows if r.ok)
    return ActionStats(
        count=len(rows),
        ok=ok,
        success_rate=_rate(ok, len(rows)),
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
    )


def _order_actions(actions: Iterable[str]) -> list[str]:
    known = [a for a in ACTION_ORDER if a in set(actions)]
    return known + sorted(set(actions) - set(ACTION_ORDER))


# --- reading ----------------------------------------------------------------------------------

DISRUPTIVE_PHASES = {"outage"}


@dataclass(frozen=True)
class PhaseRows:
    rows: dict[str, list[RequestRow]]  # phase -> its requests, phases in order of first mark
    warmup: int  # requests before the first phase mark, left out
    after_end: int  # requests at or after the end mark, left out


def marks_and_end(events: Sequence[Event], source: Path) -> tuple[list[tuple[float, str]], float | None]:
    """Phase marks as (t, phase) in time order, and the end time (first ``end`` event) or None."""
    marks = phase_marks(list(events), source)
    if not marks:
        raise ConfigError(str(source), 'no phase marks ({"event": "phase", ...})')
    end = next((e["t"] for e in events if e["event"] == EventName.END), None)
    return marks, end


# --- building ---------------------------------------------------------------------------------


def _phase_summary(name: str, t_start: float, t_end: float | None, rows: list[RequestRow]) -> PhaseSummary:
    by_action: dict[str, list[RequestRow]] = defaultdict(list)
    by_dc: dict[str, dict[str, list[RequestRow]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        by_action[r.action].append(r)
        by_dc[r.dc][r.action].append(r)
    symptoms = {name: sum(r.symptom(name) for r in rows) for name in NAMES}
    attempts, calls = sum(r.attempts for r in rows), sum(r.calls for r in rows)
    dc_stats = {dc: {a: action_stats(acts[a]) for a in _order_actions(acts)} for dc, acts in sorted(by_dc.items())}
    return PhaseSummary(
        phase=name,
        t_start=t_start,
        t_end=t_end,
        requests=len(rows),
        success_rate=_rate(sum(1 for r in rows if r.ok), len(rows)),
        actions={a: action_stats(by_action[a]) for a in _order_actions(by_action)},
        by_dc=dc_stats,
        symptoms=symptoms,
        attempts=attempts,
        calls=calls,
        retry_amplification=attempts / calls if calls else None,
        feed_success_by_dc={dc: (s["feed"].success_rate if "feed" in s else None) for dc, s in dc_stats.items()},
    )


def by_phase(rows: Iterable[RequestRow], marks: Sequence[tuple[float, str]], end: float | None) -> PhaseRows:
    """Each request in the phase it belongs to (the one definition every per-phase table uses: the terminal's,
    summary.json's and report.md's): the phase during which it started, or the outage when it was in flight as the
    outage began. Phases in order of first mark (a repeated name merges); warm-up and after-end rows counted."""
    starts = [t for t, _ in marks]
    grouped: dict[str, list[RequestRow]] = {name: [] for _, name in marks}
    warmup = after_end = 0
    for r in rows:
        if end is not None and r.t >= end:
            after_end += 1
            continue
        i = bisect.bisect_right(starts, r.t) - 1
        if i < 0:
            warmup += 1
            continue
        # A request in flight when the power went out was hit by the outage: it counts there.
        if i + 1 < len(marks) and marks[i + 1][1] in DISRUPTIVE_PHASES and r.finished > starts[i + 1]:
            i += 1
        grouped[marks[i][1]].append(r)
    return PhaseRows(grouped, warmup, after_end)


def build_summary(run_dir: Path) -> RunSummary:
    run_dir = Path(run_dir)
    events = read_events(run_dir / JOURNAL)
    marks, end = marks_and_end(events, run_dir / JOURNAL)
    starts = [t for t, _ in marks]
    began: dict[str, float] = {}  # a phase spans from its first mark to the end of its last
    ended: dict[str, float | None] = {}
    for i, (t, name) in enumerate(marks):
        began.setdefault(name, t)
        ended[name] = starts[i + 1] if i + 1 < len(marks) else end
    phased = by_phase(read_all(run_dir / REQUESTS_FILE), marks, end)
    grouped = phased.rows
    phases = [_phase_summary(name, began[name], ended[name], grouped[name]) for name in grouped]
    amplification.attach(phases, grouped, events)
    return RunSummary(
        run=run_dir.name, phases=phases, warmup_requests=phased.warmup, after_end_requests=phased.after_end
    )


# --- writing ----------------------------------------------------------------------------------


def phases_csv_columns(summary: RunSummary) -> list[str]:
    actions = _order_actions({a for p in summary.phases for a in p.actions} | set(ACTION_ORDER))
    dcs = sorted({dc for p in summary.phases for dc in p.feed_success_by_dc})
    cols = ["phase", "t_start", "t_end", "requests", "success_rate"]
    for a in actions:
        cols += [f"{a}_count", f"{a}_success_rate", f"{a}_p50_ms", f"{a}_p99_ms"]
    cols += list(NAMES) + ["attempts", "calls", "retry_amplification", "attempts_per_request", "amplification"]
    return cols + [f"feed_success_{dc}" for dc in dcs]


def phase_row(p: PhaseSummary) -> dict[str, Any]:
    row: dict[str, Any] = {
        "phase": p.phase,
        "t_start": p.t_start,
        "t_end": p.t_end,
        "requests": p.requests,
        "success_rate": p.success_rate,
        "attempts": p.attempts,
        "calls": p.calls,
        "retry_amplification": p.retry_amplification,
        "attempts_per_request": p.attempts_per_request,
        "amplification": p.amplification,
    }
    for a, s in p.actions.items():
        row.update(
            {
                f"{a}_count": s.count,
                f"{a}_success_rate": s.success_rate,
                f"{a}_p50_ms": s.p50_ms,
                f"{a}_p99_ms": s.p99_ms,
            }
        )
    row.update(p.symptoms)
    row.update({f"feed_success_{dc}": v for dc, v in p.feed_success_by_dc.items()})
    return row


def write_summary(summary: RunSummary, run_dir: Path) -> tuple[Path, Path]:
    """Write ``summary.json`` and ``phases.csv`` (one row per phase, empty cells for 'no data')."""
    run_dir = Path(run_dir)
    json_path, csv_path = run_dir / SUMMARY_FILE, run_dir / PHASES_FILE
    json_path.write_text(summary.model_dump_json(indent=2) + "\n", encoding="utf-8")
    columns = phases_csv_columns(summary)
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        for p in summary.phases:
            writer.writerow({k: ("" if v is None else v) for k, v in phase_row(p).items()})
    return json_path, csv_path


def load_summary(path: Path) -> RunSummary:
    """Read a ``summary.json`` written by ``write_summary`` (e.g. to compare with a new run)."""
    try:
        return RunSummary.model_validate_json(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), "file not found") from None
    except ValueError as exc:
        raise ConfigError(str(path), f"not a run summary: {exc}") from None
