"""The audit as the run prints it: one row per data center, then the cross-data-center findings."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from chaos.audit.check import Audit


def render_audit(audit: Audit, console: Console) -> None:
    promise = "promises no acknowledged loss" if audit.promises_no_loss else "may lose in-flight views it rolls back"
    w = audit.writes
    profiles = ", ".join(audit.profiles)
    table = Table(
        title=f"Data audit | replication: {audit.design} ({promise}; profiles {profiles}) | view writes: "
        f"{w.get('acked', 0)} acked, {w.get('unknown', 0)} unknown, {w.get('failed', 0)} failed"
    )
    for column in (
        "views log",
        "acked present",
        "acked lost",
        "unknown applied",
        "double counted",
        "counter check",
        "rolled back",
        "uploads lost",
    ):
        table.add_column(column, justify="left" if column == "views log" else "right")
    uploads = {u.dc: u for u in audit.uploads_by_dc}
    acked = w.get("acked", 0)
    for v in audit.views:
        out_of_range = v.below_range + v.above_range
        check = "[green]ok[/]" if not out_of_range else f"[red]{v.below_range} below, {v.above_range} above[/]"
        if v.below_range and not v.below_unexplained and not v.above_range:
            check = f"[yellow]{v.below_range} below (rolled back)[/]"
        up = uploads.get(v.dc)
        table.add_row(
            f"{v.instance} ({v.dc})",
            f"{v.acked_present}/{acked}",
            _bad(v.lost_acked),
            str(v.unknown_applied),
            _bad(v.double_counted),
            check,
            str(v.rolled_back),
            _bad(up.lost_acked) if up else "-",
        )
    console.print(table)
    u = audit.uploads
    console.print(
        f"  uploads: {u.get('acked', 0)} acked, {u.get('unknown', 0)} unknown, {u.get('failed', 0)} failed | "
        f"acknowledged views missing from every data center: {_bad(audit.lost_acked_everywhere)} "
        f"({_bad(audit.lost_everywhere_unrolled)} without a rollback record)"
    )
    if audit.stack_dir != audit.run_dir:
        console.print(f"  a borrowed stack: its databases read in {audit.stack_dir}, this run's events only")
    if len(audit.views) > 1:
        console.print(
            f"  data centers disagreed for {audit.disagreed_s:.1f}s in all (longest stretch "
            f"{audit.longest_disagreement_s:.1f}s; slowest event reached every log after {audit.max_lag_s:.1f}s); "
            f"at the end: {_bad(audit.disagree_at_end)} events not everywhere, "
            f"{_bad(audit.videos_differing_at_end)} videos with differing counts"
        )
    users = {None: "one replica", True: "equal on every replica", False: "[red]replicas differ[/]"}[audit.users_equal]
    console.print(
        f"  users: {users} | earnings statements after reconciliation: {audit.earnings_checked} checked, "
        f"{_bad(audit.earnings_mismatched)} not matching the views ({audit.earnings_before_reconciliation} older, not judged)"
    )
    for reason in audit.reasons:
        console.print(f"  [red]{reason}[/]")


def render_failed(reasons: list[str], console: Console) -> None:
    """An audit that could not be done: every missing piece of evidence, named."""
    console.print("[red bold]Data audit failed: evidence is missing[/]")
    for reason in reasons:
        console.print(f"  [red]{reason}[/]")


def _bad(n: int) -> str:
    return f"[red]{n}[/]" if n else "0"
