"""The run directory, the single record of a run, and its event journal (one JSON object per line): its
writer (``Journal``) and its one reader (``read_events``)."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from chaos.events import EventBus
from chaos.rundir import JOURNAL
from services.common.errors import ConfigError

Event = dict[str, Any]  # a finite float "t" (epoch seconds) and a str "event", then the event's own fields


class EventName(StrEnum):
    """Every kind of event a journal holds: each writer and reader names it from here (a str: journal lines and
    the control room's stream carry the plain name)."""

    START = "start"  # a scenario run: scenario, profile, topology, seed, users, think_s, duration_s
    LOAD_START = "load-start"
    PHASE = "phase"  # baseline, outage, recovery
    HYPOTHESIS = "hypothesis"  # a check: phase, met, probes
    RECOVERED = "recovered"  # the hypothesis held again after the last fault: after_s
    RELAPSED = "relapsed"  # ...and deviated again: recovery starts over
    METRICS = "metrics"  # every instance's counters as a phase starts
    LOAD_STOPPED = "load-stopped"  # the users' load generator exited mid-run: at_s, phase
    END = "end"
    ABORTED = "aborted"
    BORROWED = "borrowed"  # a run on a lent stack: stack_dir, where that stack keeps its files
    RECONCILED = "reconciled"
    UP = "up"
    DOWN = "down"
    SWEPT = "swept"  # Docker: containers left by an earlier run, removed
    POWER_OFF = "power-off"
    POWER_ON = "power-on"
    KILL_INSTANCE = "kill-instance"
    START_INSTANCE = "start-instance"
    PROFILE = "profile"  # a profile switched to live
    FAULT_ON = "fault-on"
    FAULT_OFF = "fault-off"
    FAULT_OFF_FAILED = "fault-off-failed"
    LEASE_RENEWAL_FAILED = "lease-renewal-failed"
    PANIC = "panic"
    PANIC_ROLLBACKS = "panic-rollbacks"
    EXERCISE_DETECT = "exercise-detect"
    EXERCISE_ACT = "exercise-act"
    EXERCISE_HINT = "exercise-hint"  # the room asked for the card's next hint: n, cost
    PAGE = "page"  # the workshop's pager: an SLO burn-rate alert (scope, burn rates, windows)
    PAGE_ACK = "page-ack"  # the team acknowledged the page
    CELL = "cell"  # the metastability map: one cell's load, fault and outcome (chaos/metastability.py)


def new_run_dir(root: Path, scenario: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(100):
        run_dir = root / (f"{stamp}-{scenario}" if n == 0 else f"{stamp}-{scenario}-{n}")
        try:
            run_dir.mkdir(parents=True)
            return run_dir
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a run directory under {root}")


class Journal:
    def __init__(self, run_dir: Path, bus: EventBus | None = None) -> None:
        self.path = run_dir / JOURNAL
        self.bus = bus
        self._lock = threading.Lock()  # several threads record (control API, engine, lease renewer)

    def record(self, event: EventName, **fields: Any) -> dict[str, Any]:
        entry = {"t": time.time(), "event": event, **fields}
        with self._lock, self.path.open("a") as f:
            f.write(json.dumps(entry, default=str) + "\n")
        if self.bus is not None:
            self.bus.publish(entry)
        return entry

    def read(self) -> list[Event]:
        """The events so far, in time order: none before the first."""
        return read_events(self.path) if self.path.exists() else []


def read_events(path: Path) -> list[Event]:
    """Every event of a journal file, in time order. A complete line that is not an event names the file
    and the line; a last line without its newline is left out unless it is whole (a record being written,
    or cut by a kill)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "not found (every run writes its journal there)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read: {exc}") from None
    lines = text.split("\n")
    last = lines.pop()  # "" when the file ends with a newline
    events = [_event(path, n, line) for n, line in enumerate(lines, start=1) if line.strip()]
    if last.strip():
        try:
            events.append(_event(path, len(lines) + 1, last))
        except ConfigError:
            pass  # half written
    return sorted(events, key=lambda e: e["t"])


def headline(met: bool | None, probes: Iterable[Mapping[str, Any]]) -> tuple[bool | None, tuple[str, ...]]:
    """What a line about a check tells: its verdict and which probes deviated (a check's journal ``probes``). The
    terminal and report.md's timeline say a check again when this changes: a probe that starts deviating while the
    verdict already was deviated (0-view displays answered seconds after the outage's first failures) gets its line."""
    return met, tuple(str(p.get("probe")) for p in probes if p.get("status") == "deviated")


def phase_marks(events: list[Event], source: Path) -> list[tuple[float, str]]:
    """Every phase mark as (t, phase name), in the events' order; a mark without a name names the file."""
    marks: list[tuple[float, str]] = []
    for event in events:
        if event["event"] == EventName.PHASE:
            phase = event.get("phase")
            if not isinstance(phase, str) or not phase:
                raise ConfigError(str(source), f"phase mark without a 'phase' name at t={event['t']}")
            marks.append((event["t"], phase))
    return marks


def _event(path: Path, n: int, line: str) -> Event:
    try:
        event = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ConfigError(str(path), f"line {n}: not JSON ({exc.msg})") from None
    if not isinstance(event, dict):
        raise ConfigError(str(path), f"line {n}: not a JSON object")
    t, kind = event.get("t"), event.get("event")
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
        raise ConfigError(str(path), f"line {n}: field 't' must be a number, got {t!r}")
    if not isinstance(kind, str):
        raise ConfigError(str(path), f"line {n}: field 'event' must be a string, got {kind!r}")
    return {**event, "t": float(t)}
