"""What a run left for its audit, and where it is.

The run's topology names the replicas whose databases must exist; the ledger (writes.csv, uploads.csv) says
what users were told; the profiles say which design holds (chaos/audit/design.py). A run on a borrowed stack
(an exercise, POST /runs) finds the databases, the profile copies and the profile switches in the stack's own
run directory, which the run's journal names (its "borrowed" event); the stack keeps other runs' data there
too, so only events made while this run lasted are judged. Everything missing or unreadable is named at
once (EvidenceError): the audit never passes on evidence it did not see."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from chaos.audit.design import Design, design_of
from chaos.audit.errors import AuditError, EvidenceError
from chaos.audit.ledger import UploadWrite, ViewWrite, upload_writes, view_writes
from chaos.audit.state import RunState, Window, read_run
from chaos.journal import Event, EventName, read_events
from chaos.rundir import DATA_DIR, JOURNAL, TOPOLOGY_FILE
from chaos.topology import load_topology
from services.common.errors import ConfigError

T = TypeVar("T")


@dataclass
class Evidence:
    run_dir: Path
    stack_dir: Path  # where the services kept their files: the run directory, or the lending stack's
    events: list[Event]  # the run's journal
    state: RunState
    writes: dict[str, ViewWrite]
    uploads: list[UploadWrite]
    design: Design


def gather(run_dir: Path) -> Evidence:
    try:
        topology = load_topology(run_dir / TOPOLOGY_FILE)
    except ConfigError as exc:
        raise AuditError(f"{run_dir} is not a finished run directory: {exc}") from None
    problems: list[str] = []
    try:
        events = read_events(run_dir / JOURNAL)
    except ConfigError as exc:
        raise EvidenceError([f"{exc}: the run's own record (its profile switches, its end)"]) from None
    if not events:
        raise EvidenceError([f"{run_dir / JOURNAL}: no event: the run's own record (its profile switches, its end)"])
    stack_dir, window, switches = _stack(run_dir, events, problems)
    design = design_of(topology, run_dir, stack_dir, switches)
    problems += design.problems
    state = _collect(problems, lambda: read_run(topology, stack_dir / DATA_DIR, window))
    writes = _collect(problems, lambda: view_writes(run_dir))
    uploads = _collect(problems, lambda: upload_writes(run_dir))
    if problems or state is None or writes is None or uploads is None:
        raise EvidenceError(problems)
    return Evidence(run_dir, stack_dir, events, state, writes, uploads, design)


def _stack(run_dir: Path, events: list[Event], problems: list[str]) -> tuple[Path, Window, list[Event]]:
    """Where the services' files are, which of their events are this run's, and the profile switches."""
    lent = next((e for e in events if e["event"] == EventName.BORROWED), None)
    if lent is None:
        return run_dir, None, [e for e in events if e["event"] == EventName.PROFILE]
    window = (events[0]["t"], events[-1]["t"])
    if not isinstance(lent.get("stack_dir"), str):
        problems.append(
            f"{run_dir / JOURNAL}: the '{EventName.BORROWED}' event has no field 'stack_dir' (where the stack's "
            "databases are)"
        )
        return run_dir, window, []
    stack_dir = Path(lent["stack_dir"])
    try:
        stack_events = read_events(stack_dir / JOURNAL)
    except ConfigError as exc:
        problems.append(f"{exc}: the lending stack's journal (the profile switches during this run)")
        stack_events = []
    switches = [e for e in stack_events if e["event"] == EventName.PROFILE and window[0] <= e["t"] <= window[1]]
    return stack_dir, window, switches


def _collect(problems: list[str], read: Callable[[], T]) -> T | None:
    """What ``read`` returns, or None with its problems added: every missing piece is named, not the first."""
    try:
        return read()
    except EvidenceError as exc:
        problems.extend(exc.problems)
        return None
