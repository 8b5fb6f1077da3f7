"""Two groups of runs (e.g. naive and resilient, several seeds each) compared figure by figure: each figure's
mean with a 95% confidence interval (Student's t) per group, and whether the difference is significant
(Welch's t-test, which does not assume equal variances; scipy computes both).

One run against one says nothing about noise: on a shared laptop the same scenario's p99 moves by 2x from
one run to the next, so a difference counts only when it stands out from the runs' own spread.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scipy import stats

from chaos.report import build_summary
from chaos.report_model import PhaseSummary, RunSummary
from chaos.rundir import JOURNAL_DOC
from services.common.errors import UsageError
from services.common.symptoms import SYMPTOMS

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE


@dataclass(frozen=True)
class Estimate:
    n: int
    mean: float | None  # None: no run had the figure
    low: float | None  # the interval; None with fewer than two values
    high: float | None


@dataclass(frozen=True)
class FigureComparison:
    figure: str
    a: Estimate
    b: Estimate
    p_value: float | None  # Welch's t-test; None when it cannot be computed (n < 2, or no variance at all)
    significant: bool


def estimate(values: Sequence[float]) -> Estimate:
    if not values:
        return Estimate(0, None, None, None)
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return Estimate(n, mean, None, None)
    sem = stats.sem(values)
    if sem == 0:
        return Estimate(n, mean, mean, mean)
    low, high = stats.t.interval(CONFIDENCE, n - 1, loc=mean, scale=sem)
    return Estimate(n, mean, float(low), float(high))


def compare_values(figure: str, a: Sequence[float], b: Sequence[float]) -> FigureComparison:
    ea, eb = estimate(a), estimate(b)
    p_value: float | None = None
    if len(a) >= 2 and len(b) >= 2:
        if stats.tvar(a) == 0 and stats.tvar(b) == 0:
            # no spread at all: equal means are the same figure; different ones cannot be noise
            p_value = 1.0 if ea.mean == eb.mean else 0.0
        else:
            p_value = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    return FigureComparison(figure, ea, eb, p_value, p_value is not None and p_value < ALPHA)


# -- the figures of a run -----------------------------------------------------------------------------------
Figure = Callable[[RunSummary, dict[str, Any]], float | None]


def _symptom_count(name: str) -> Callable[[PhaseSummary], float | None]:
    return lambda p: float(p.symptoms.get(name, 0))


def _phase_figure(phase: str, get: Callable[[PhaseSummary], float | None]) -> Figure:
    def figure(summary: RunSummary, journal: dict[str, Any]) -> float | None:
        found = summary.phase(phase)
        return None if found is None else get(found)

    return figure


def _recovered_after(summary: RunSummary, journal: dict[str, Any]) -> float | None:
    return (journal.get("recovery") or {}).get("recovered_after_s")


def figures(phases: Sequence[str]) -> dict[str, Figure]:
    """Every figure compared, by its label: per phase success, feed p99 and each symptom, then the recovery."""
    chosen: dict[str, Figure] = {}
    for phase in phases:
        chosen[f"{phase}: success"] = _phase_figure(phase, lambda p: p.success_rate)
        chosen[f"{phase}: feed p99 ms"] = _phase_figure(
            phase, lambda p: p.actions["feed"].p99_ms if "feed" in p.actions else None
        )
        for symptom in SYMPTOMS:
            chosen[f"{phase}: {symptom.title}"] = _phase_figure(phase, _symptom_count(symptom.name))
    chosen["recovered after s"] = _recovered_after
    chosen["deviated (share of runs)"] = lambda summary, journal: float(bool(journal.get("deviated")))
    return chosen


@dataclass(frozen=True)
class GroupRun:
    summary: RunSummary
    journal: dict[str, Any]


def read_run(run_dir: Path) -> GroupRun:
    path = run_dir / JOURNAL_DOC
    try:
        journal = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{run_dir} is not a finished run: {JOURNAL_DOC} is missing") from None
    except ValueError:
        raise UsageError(f"{path} is not valid JSON") from None
    return GroupRun(build_summary(run_dir), journal)


def compare_groups(a: Sequence[GroupRun], b: Sequence[GroupRun]) -> list[FigureComparison]:
    phases: list[str] = []
    for run in (*a, *b):
        phases += [p.phase for p in run.summary.phases if p.phase not in phases]
    rows = []
    for label, figure in figures(phases).items():
        va = [v for v in (figure(r.summary, r.journal) for r in a) if v is not None]
        vb = [v for v in (figure(r.summary, r.journal) for r in b) if v is not None]
        if va or vb:
            rows.append(compare_values(label, va, vb))
    return rows
