"""Per-phase summary of a run, built from the run directory alone.

Inputs (in ``run_dir``):

* ``journal.jsonl`` -- one JSON object a line ``{"t": float, "event": str, ...}``; phase marks are
  ``{"event": "phase", "phase": "baseline"|"outage"|"recovery"}``, the run's end is ``{"event": "end"}``.
* ``requests.csv`` -- what users saw (written by ``loadtest/records.py``).

A request belongs to the phase during which it *started*; rows before the first phase mark (warm-up)
and at or after the end mark are left out. Percentiles use the nearest-rank method over every request
of the group, failures included. Rendering lives in ``chaos/report_render.py``.
"""
from __future__ import annotations

import bisect
import csv
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


from chaos import amplification
from chaos.journal import Journal
from chaos.report_model import (
    ACTION_ORDER, SYMPTOMS, ActionStats, PhaseSummary, RunSummary, Symptoms, percentile,
)
from services.common.errors import ConfigError

JOURNAL_FILE = "journal.jsonl"
REQUESTS_FILE = "requests.csv"
SUMMARY_FILE = "summary.json"
PHASES_FILE = "phases.csv"
_INT_COLUMNS = ("ok", "status", "tries", "attempts", "calls", "zero_views", "stale_views",
                "earnings_missing", "repeated_feed", "generic_feed")
_REQUIRED_COLUMNS = ("t", "user", "dc", "action", "latency_ms") + _INT_COLUMNS


def _rate(ok: int, count: int) -> float | None:
    return ok / count if count else None


def action_stats(rows: Sequence[dict[str, Any]]) -> ActionStats:
    latencies = [r["latency_ms"] for r in rows]
    ok = sum(1 for r in rows if r["ok"])
    return ActionStats(count=len(rows), ok=ok, success_rate=_rate(ok, len(rows)),
                       p50_ms=percentile(latencies, 50), p99_ms=percentile(latencies, 99))


def _order_actions(actions: Iterable[str]) -> list[str]:
    known = [a for a in ACTION_ORDER if a in set(actions)]
    return known + sorted(set(actions) - set(ACTION_ORDER))


# --- reading ----------------------------------------------------------------------------------

DISRUPTIVE_PHASES = {"outage"}


def read_journal(path: Path) -> tuple[list[tuple[float, str]], float | None]:
    """Phase marks as (t, phase) sorted by time, and the end time (first ``end`` event) or None."""
    marks: list[tuple[float, str]] = []
    end: float | None = None
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ConfigError(str(path), "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read: {exc}") from None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(str(path), f"line {n}: not JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise ConfigError(str(path), f"line {n}: not a JSON object")
        t, event = obj.get("t"), obj.get("event")
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
            raise ConfigError(str(path), f"line {n}: field 't' must be a number, got {t!r}")
        if not isinstance(event, str):
            raise ConfigError(str(path), f"line {n}: field 'event' must be a string, got {event!r}")
        if event == "phase":
            phase = obj.get("phase")
            if not isinstance(phase, str) or not phase:
                raise ConfigError(str(path), f"line {n}: phase mark without a 'phase' name")
            marks.append((float(t), phase))
        elif event == "end" and end is None:
            end = float(t)
    if not marks:
        raise ConfigError(str(path), "no phase marks ({\"event\": \"phase\", ...})")
    marks.sort(key=lambda m: m[0])
    return marks, end


def read_requests(path: Path) -> list[dict[str, Any]]:
    """Rows of ``requests.csv`` with numbers parsed; any malformed row names the file and line."""
    try:
        f = open(path, newline="", encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "file not found") from None
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc}") from None
    rows: list[dict[str, Any]] = []
    with f:
        try:
            reader = csv.DictReader(f)
            missing = [c for c in _REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ConfigError(str(path), f"missing columns {missing} (header {reader.fieldnames})")
            for raw in reader:
                line = reader.line_num
                if None in raw or any(raw.get(c) is None for c in _REQUIRED_COLUMNS):
                    raise ConfigError(str(path), f"line {line}: wrong number of fields")
                row: dict[str, Any] = dict(raw)
                for col in ("t", "latency_ms"):
                    row[col] = _number(path, line, col, raw[col], float)
                for col in _INT_COLUMNS:
                    row[col] = _number(path, line, col, raw[col], int)
                rows.append(row)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ConfigError(str(path), f"not readable as CSV: {exc}") from None
    return rows


def _number(path: Path, line: int, col: str, value: str, kind: type) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(str(path), f"line {line}: column {col!r}: {value!r} is not a number") from None
    if kind is float and not math.isfinite(number):
        raise ConfigError(str(path), f"line {line}: column {col!r}: {value!r} is not finite")
    return number


# --- building ---------------------------------------------------------------------------------

def _phase_summary(name: str, t_start: float, t_end: float | None, rows: list[dict[str, Any]]) -> PhaseSummary:
    by_action: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_dc: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        by_action[r["action"]].append(r)
        by_dc[r["dc"]][r["action"]].append(r)
    feeds = by_action.get("feed", [])
    symptoms = Symptoms(
        zero_view_displays=sum(r["zero_views"] for r in feeds),
        stale_feeds=sum(1 for r in feeds if r["stale_views"] > 0),
        stale_items=sum(r["stale_views"] for r in feeds),
        earnings_missing=sum(r["earnings_missing"] for r in by_action.get("earnings", [])),
        failed_logins=sum(1 for r in by_action.get("login", []) if not r["ok"]),
        failed_uploads=sum(1 for r in by_action.get("upload", []) if not r["ok"]),
        repeated_feeds=sum(1 for r in feeds if r["repeated_feed"]),
        generic_feeds=sum(1 for r in feeds if r["generic_feed"]),
    )
    attempts, calls = sum(r["attempts"] for r in rows), sum(r["calls"] for r in rows)
    dc_stats = {dc: {a: action_stats(acts[a]) for a in _order_actions(acts)} for dc, acts in sorted(by_dc.items())}
    return PhaseSummary(
        phase=name, t_start=t_start, t_end=t_end, requests=len(rows),
        success_rate=_rate(sum(1 for r in rows if r["ok"]), len(rows)),
        actions={a: action_stats(by_action[a]) for a in _order_actions(by_action)},
        by_dc=dc_stats, symptoms=symptoms, attempts=attempts, calls=calls,
        retry_amplification=attempts / calls if calls else None,
        feed_success_by_dc={dc: (s["feed"].success_rate if "feed" in s else None) for dc, s in dc_stats.items()},
    )


def build_summary(run_dir: Path) -> RunSummary:
    run_dir = Path(run_dir)
    marks, end = read_journal(run_dir / JOURNAL_FILE)
    rows = read_requests(run_dir / REQUESTS_FILE)
    starts = [t for t, _ in marks]
    grouped: dict[str, list[dict[str, Any]]] = {}
    spans: dict[str, list[float | None]] = {}
    for i, (t, name) in enumerate(marks):  # phases in order of first mark; a repeated name merges
        grouped.setdefault(name, [])
        nxt = starts[i + 1] if i + 1 < len(marks) else end
        spans.setdefault(name, [t, nxt])[1] = nxt
    warmup = after_end = 0
    for r in rows:
        if end is not None and r["t"] >= end:
            after_end += 1
            continue
        i = bisect.bisect_right(starts, r["t"]) - 1
        if i < 0:
            warmup += 1
            continue
        # A request in flight when the power went out was hit by the outage: it counts there.
        if i + 1 < len(marks) and marks[i + 1][1] in DISRUPTIVE_PHASES and r["t"] + r["latency_ms"] / 1000 > starts[i + 1]:
            i += 1
        grouped[marks[i][1]].append(r)
    phases = [_phase_summary(name, spans[name][0], spans[name][1], grouped[name]) for name in grouped]
    amplification.attach(phases, grouped, Journal(run_dir).read())
    return RunSummary(run=run_dir.name, phases=phases, warmup_requests=warmup, after_end_requests=after_end)


# --- writing ----------------------------------------------------------------------------------

def phases_csv_columns(summary: RunSummary) -> list[str]:
    actions = _order_actions({a for p in summary.phases for a in p.actions} | set(ACTION_ORDER))
    dcs = sorted({dc for p in summary.phases for dc in p.feed_success_by_dc})
    cols = ["phase", "t_start", "t_end", "requests", "success_rate"]
    for a in actions:
        cols += [f"{a}_count", f"{a}_success_rate", f"{a}_p50_ms", f"{a}_p99_ms"]
    cols += list(SYMPTOMS) + ["attempts", "calls", "retry_amplification", "attempts_per_request", "amplification"]
    return cols + [f"feed_success_{dc}" for dc in dcs]


def phase_row(p: PhaseSummary) -> dict[str, Any]:
    row: dict[str, Any] = {"phase": p.phase, "t_start": p.t_start, "t_end": p.t_end, "requests": p.requests,
                           "success_rate": p.success_rate, "attempts": p.attempts, "calls": p.calls,
                           "retry_amplification": p.retry_amplification,
                           "attempts_per_request": p.attempts_per_request, "amplification": p.amplification}
    for a, s in p.actions.items():
        row.update({f"{a}_count": s.count, f"{a}_success_rate": s.success_rate,
                    f"{a}_p50_ms": s.p50_ms, f"{a}_p99_ms": s.p99_ms})
    row.update(p.symptoms.model_dump())
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
