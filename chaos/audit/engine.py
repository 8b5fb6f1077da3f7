"""The audit inside a scenario run: reconcile before teardown, audit after it (chaos/engine/run.py).

Reconciliation is what a returning data center goes through anyway; the run waits for it so the
audit judges the state the design converges to, not a snapshot in the middle of shipping: every
running replicated store (views logs, catalogs) has shipped everything to its peers, then every
earnings instance recomputes each creator's statement from the reconciled views.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from chaos.audit.check import audit_run, write_audit, write_failed
from chaos.audit.errors import EvidenceError
from chaos.audit.render import render_audit, render_failed
from chaos.instance_client import AUDIT_S, InstanceClient
from chaos.journal import EventName, Journal
from chaos.rundir import AUDIT_FILE
from chaos.runtime.base import Runtime
from services.common.api import REPLICATION_STATUS
from services.common.errors import BlackoutError
from services.common.seed import creator_names

RECONCILE_TIMEOUT_S = 30.0
POLL_S = 0.2


def reconcile(runtime: Runtime, journal: Journal, timeout_s: float = RECONCILE_TIMEOUT_S) -> dict[str, Any]:
    """Wait until nothing is left to ship, then recompute earnings; what happened, also journaled."""
    started = time.monotonic()
    running = {name: info for name, info in runtime.status().items() if info.get("state") == "running"}
    stores = [runtime.topology.url(n) for n, info in running.items() if info.get("service") in ("views", "recommender")]
    earnings = [runtime.topology.url(n) for n, info in running.items() if info.get("service") == "earnings"]
    waiting: int | None = None
    with InstanceClient(AUDIT_S) as client:
        deadline = started + timeout_s
        while True:
            waiting = _waiting(client, stores)
            if waiting == 0 or time.monotonic() >= deadline:
                break
            time.sleep(POLL_S)  # poll interval, bounded by the deadline above
        recomputed = 0
        for url in earnings:
            for creator in creator_names():
                try:
                    recomputed += client.get(f"{url}/creators/{creator}/earnings").status_code == 200
                except httpx.HTTPError:
                    pass  # counted as not recomputed; the audit judges only statements made after convergence
    result = {
        "converged": waiting == 0,
        "waiting": waiting,
        "seconds": round(time.monotonic() - started, 2),
        "earnings_recomputed": recomputed,
    }
    journal.record(EventName.RECONCILED, **result)
    return result


def _waiting(client: InstanceClient, urls: list[str]) -> int | None:
    """Records not yet shipped, summed over every store and peer; None when a store did not answer."""
    total = 0
    for url in urls:
        try:
            answer = client.get(url + REPLICATION_STATUS)
            total += sum(answer.json()["peers"].values())
        except (httpx.HTTPError, ValueError, KeyError):
            return None
    return total


def reconcile_quietly(runtime: Runtime, journal: Journal, console: Console) -> None:
    try:
        result = reconcile(runtime, journal)
    except (BlackoutError, httpx.HTTPError, OSError) as exc:
        console.print(f"[yellow]no reconciliation before teardown: {exc}[/]")
        return
    if not result["converged"]:
        console.print(f"[yellow]replication had not drained before teardown ({result['waiting']} waiting)[/]")


def audit_after_run(run_dir: Path, console: Console) -> list[str]:
    """Audit the finished run directory; its findings (reasons) join the verdict, and so does an audit that could
    not be done (a run is never passed on data nobody checked). Never stops the journal's writing."""
    try:
        audit = audit_run(run_dir)
        write_audit(audit, run_dir)
    except EvidenceError as exc:
        return _failed(exc.reasons, run_dir, console)
    except (BlackoutError, sqlite3.Error, OSError) as exc:
        return _failed([f"audit: not done: {exc}"], run_dir, console)
    render_audit(audit, console)
    return list(audit.reasons)


def _failed(reasons: list[str], run_dir: Path, console: Console) -> list[str]:
    try:
        write_failed(reasons, run_dir)
    except OSError as exc:
        reasons = [*reasons, f"audit: {AUDIT_FILE} not written: {exc}"]
    render_failed(reasons, console)
    return reasons
