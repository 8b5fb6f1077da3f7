"""Rich tables for run summaries: one run per phase, two runs side by side, or two groups of runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from chaos.report_model import ACTION_ORDER, ActionStats, PhaseSummary, RunSummary
from services.common.symptoms import SYMPTOMS

if TYPE_CHECKING:  # types only: chaos.comparison imports scipy (~1-3 s), which every `blackout` command paid at start
    from chaos.comparison import Estimate, FigureComparison

Metric = Callable[[PhaseSummary | None], str]
# one figure of an action's stats, and how it is shown
Column = tuple[Callable[[ActionStats], float | None], Callable[[float | None], str]]


def fmt_pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def fmt_ms(ms: float | None) -> str:
    return "-" if ms is None else f"{ms:.0f}"


def fmt_amp(amp: float | None) -> str:
    return "-" if amp is None else f"{amp:.2f}x"


def _action_rows(*summaries: RunSummary) -> list[tuple[str, str | None]]:
    """(action, dc or None) rows: every action overall, then per data center."""
    actions = {a for s in summaries for p in s.phases for a in p.actions}
    ordered = [a for a in ACTION_ORDER if a in actions] + sorted(actions - set(ACTION_ORDER))
    dcs = sorted({dc for s in summaries for p in s.phases for dc in p.by_dc})
    rows: list[tuple[str, str | None]] = [(a, None) for a in ordered]
    for dc in dcs:
        rows += [(a, dc) for a in ordered if any(a in p.by_dc.get(dc, {}) for s in summaries for p in s.phases)]
    return rows


def _stats(p: PhaseSummary | None, action: str, dc: str | None) -> ActionStats | None:
    if p is None:
        return None
    return p.actions.get(action) if dc is None else p.by_dc.get(dc, {}).get(action)


def _label(action: str, dc: str | None) -> str:
    return action if dc is None else f"  {action} @ {dc}"


def _symptom_metrics(*summaries: RunSummary) -> list[tuple[str, Metric]]:
    metrics: list[tuple[str, Metric]] = [  # a summary saved before a symptom was added has "-" for it
        (s.title, _symptom(s.name)) for s in SYMPTOMS
    ]
    metrics.append(("attempts per call (answered)", lambda p: "-" if p is None else fmt_amp(p.retry_amplification)))
    metrics.append(
        (
            "attempts per user action",
            lambda p: "-" if p is None or p.attempts_per_request is None else f"{p.attempts_per_request:.2f}",
        )
    )
    metrics.append(("retry amplification (end to end)", lambda p: "-" if p is None else fmt_amp(p.amplification)))
    for dc in sorted({dc for s in summaries for p in s.phases for dc in p.amplification_by_dc}):
        metrics.append((f"retry amplification @ {dc}", _amplification_at(dc)))
    dcs = sorted({dc for s in summaries for p in s.phases for dc in p.feed_success_by_dc})
    for dc in dcs:
        metrics.append((f"feed success @ {dc}", _feed_success_at(dc)))
    metrics.append(("requests", lambda p: "-" if p is None else str(p.requests)))
    return metrics


def _symptom(name: str) -> Metric:
    return lambda p: "-" if p is None or name not in p.symptoms else str(p.symptoms[name])


def _amplification_at(dc: str) -> Metric:
    return lambda p: "-" if p is None else fmt_amp(p.amplification_by_dc.get(dc))


def _feed_success_at(dc: str) -> Metric:
    return lambda p: "-" if p is None else fmt_pct(p.feed_success_by_dc.get(dc))


def render_summary(summary: RunSummary, console: Console) -> None:
    """Per-phase action table (success %, p50, p99 per phase) and a symptoms table (rows symptoms)."""
    phases = summary.phases
    table = Table(title=f"Run {summary.run}: what users saw, per phase")
    table.add_column("action", style="bold")
    for p in phases:
        table.add_column(f"{p.phase}\nok %  p50/p99 ms", justify="right")
    for action, dc in _action_rows(summary):
        cells = [_label(action, dc)]
        for p in phases:
            s = _stats(p, action, dc)
            cells.append("-" if s is None else f"{fmt_pct(s.success_rate)}  {fmt_ms(s.p50_ms)}/{fmt_ms(s.p99_ms)}")
        table.add_row(*cells)
    console.print(table)

    symptoms = Table(title=f"Run {summary.run}: symptoms per phase")
    symptoms.add_column("symptom", style="bold")
    for p in phases:
        symptoms.add_column(p.phase, justify="right")
    for label, metric in _symptom_metrics(summary):
        symptoms.add_row(label, *[metric(p) for p in phases])
    console.print(symptoms)
    if summary.warmup_requests or summary.after_end_requests:
        console.print(
            f"(left out: {summary.warmup_requests} warm-up requests, {summary.after_end_requests} after the end mark)"
        )


def render_comparison(a: RunSummary, b: RunSummary, console: Console, labels: tuple[str, str] | None = None) -> None:
    """Two runs side by side: for each phase, run A and run B columns of the same metrics."""
    la, lb = labels or (a.run, b.run)
    if la == lb:
        la, lb = f"A:{la}", f"B:{lb}"
    names = [p.phase for p in a.phases] + [p.phase for p in b.phases if a.phase(p.phase) is None]
    for name in names:
        pa, pb = a.phase(name), b.phase(name)
        table = Table(title=f"Phase {name}: {la} vs {lb} (latency ms)")
        table.add_column("action", style="bold")
        for heading in ("ok %", "p50", "p99"):
            table.add_column(f"{heading}\n{la}", justify="right")
            table.add_column(f"{heading}\n{lb}", justify="right")
        for action, dc in _action_rows(a, b):
            sa, sb = _stats(pa, action, dc), _stats(pb, action, dc)
            if sa is None and sb is None:
                continue
            cells = [_label(action, dc)]
            columns: tuple[Column, ...] = (
                (lambda s: s.success_rate, fmt_pct),
                (lambda s: s.p50_ms, fmt_ms),
                (lambda s: s.p99_ms, fmt_ms),
            )
            for get, fmt in columns:
                cells += [fmt(get(sa)) if sa else "-", fmt(get(sb)) if sb else "-"]
            table.add_row(*cells)
        console.print(table)

    symptoms = Table(title=f"Symptoms: {la} vs {lb}")
    symptoms.add_column("symptom", style="bold")
    for name in names:
        symptoms.add_column(f"{name}\n{la}", justify="right")
        symptoms.add_column(f"{name}\n{lb}", justify="right")
    for label, metric in _symptom_metrics(a, b):
        cells = [label]
        for name in names:
            cells += [metric(a.phase(name)), metric(b.phase(name))]
        symptoms.add_row(*cells)
    console.print(symptoms)


def render_group_comparison(rows: Sequence[FigureComparison], labels: tuple[str, str], console: Console) -> None:
    """Each figure as mean [95% interval] per group, and whether the groups differ beyond their noise."""
    la, lb = labels
    table = Table(title=f"{la} vs {lb}: mean [95% interval]; significant = Welch's t-test p < 0.05")
    for column in ("figure", la, lb, "p", "significant"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for row in rows:
        table.add_row(
            row.figure,
            _estimate(row.figure, row.a),
            _estimate(row.figure, row.b),
            "-" if row.p_value is None else f"{row.p_value:.3f}",
            "[bold]yes[/]" if row.significant else "no",
        )
    console.print(table)


def _estimate(figure: str, e: Estimate) -> str:
    def show(v: float) -> str:
        if figure.endswith(("success", "(share of runs)")):
            return f"{v * 100:.1f}%"
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"

    if e.mean is None:
        return "-"
    interval = "" if e.low is None or e.high is None else f" [{show(e.low)}, {show(e.high)}]"
    return f"{show(e.mean)}{interval} (n={e.n})"
