"""The live terminal view of a run: phase, elapsed time, what users of each data center saw in the last
seconds (success rate, p99), and the faults in force. Redrawn at every tick of the walk."""

from __future__ import annotations

from collections import defaultdict

from rich.console import Group
from rich.table import Table
from rich.text import Text

from chaos.report_model import percentile
from loadtest.requests_reader import RequestRow


def view(
    phase: str,
    elapsed_s: float,
    duration_s: float,
    rows: list[RequestRow],
    window_s: float,
    faults: list[str],
    verdict: bool | None,
) -> Group:
    """``rows``: requests.csv rows that finished in the last ``window_s``."""
    by_dc: dict[str, list[RequestRow]] = defaultdict(list)
    for row in rows:
        by_dc[row.dc].append(row)
    table = Table(title=f"what users saw, last {window_s:g} s", title_justify="left")
    for column in ("data center", "requests", "success", "p99"):
        table.add_column(column, justify="left" if column == "data center" else "right")
    for dc, chosen in sorted(by_dc.items()):
        ok = sum(1 for r in chosen if r.ok)
        rate = ok / len(chosen)
        p99 = percentile([r.latency_ms for r in chosen], 99)
        style = "green" if rate >= 0.95 else "yellow" if rate >= 0.8 else "red"
        table.add_row(dc, str(len(chosen)), f"[{style}]{rate:.0%}[/]", "-" if p99 is None else f"{p99:.0f} ms")
    mark = {True: "[green]holds[/]", False: "[red]deviated[/]", None: "[dim]not checked yet[/]"}[verdict]
    head = Text.from_markup(
        f"[bold]{phase}[/] {elapsed_s:4.0f}s / {duration_s:g}s | hypothesis {mark} | faults: "
        + (", ".join(faults) or "none")
    )
    return Group(head, table)
