"""The post-mortem of a real naive power loss says what its verdict says: the picture's symptoms are the ones each
hypothesis check counted, and report.md's tables and timeline agree with the terminal's and the journal's."""

from __future__ import annotations

import json
import math
from pathlib import Path

from chaos.observability.postmortem import bin_width, figure
from chaos.observability.run_record import load_run
from chaos.report import load_summary
from chaos.rundir import JOURNAL_DOC, NOTES, SUMMARY_FILE
from services.common.symptoms import SYMPTOMS

ZERO_VIEWS = "zero_view_displays <= 0"


def during_checks(run_dir: Path) -> list[tuple[tuple[float, float], int]]:
    """((window start, end), 0-view displays counted) of every check the run made during the outage."""
    doc = json.loads((run_dir / JOURNAL_DOC).read_text())
    return [
        ((c["window"][0], c["window"][1]), int(p["value"]))
        for c in doc["steady_states"]["during"]
        for p in c["probes"]
        if p["probe"] == ZERO_VIEWS and p["value"] is not None
    ]


def test_the_pictured_symptoms_are_the_ones_each_check_counted(naive_run):
    record = load_run(naive_run)
    fig = figure(record)
    panels = {axis.get_ylabel().split("\n")[0]: axis for axis in fig.axes}
    lines = [
        line for line in panels["symptoms users saw"].get_lines() if "zero-view displays @" in str(line.get_label())
    ]
    assert len(lines) == 2  # dc-east and dc-west
    half, width = bin_width(record) / 2, bin_width(record)
    bins = [
        (x - half, y)
        for line in lines
        for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True)
        if not math.isnan(y)
    ]
    # the outage showed 0-view displays (a loaded machine answers them late, in the recovery: then no check
    # during the outage may count them, and the picture must not draw them inside one's window either)
    assert load_summary(naive_run / SUMMARY_FILE).phase("outage").symptoms["zero_view_displays"] > 0
    assert sum(y for _, y in bins) > 0
    for (start, end), counted in during_checks(naive_run):
        a, b = start - record.start, end - record.start
        inside = sum(y for left, y in bins if a <= left and left + width <= b)
        touching = sum(y for left, y in bins if left < b and left + width > a)
        # the check counted the answers of its window: every bin within it, at most the bins it touches
        assert inside <= counted <= touching, (a, b, counted, inside, touching)


def test_report_md_says_what_the_terminal_and_the_journal_say(naive_run):
    text = (naive_run / NOTES).read_text()
    summary = load_summary(naive_run / SUMMARY_FILE)
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| outage | dc-")]
    seen = [r for r in rows if len(r) == 3 + len(SYMPTOMS)]  # the "What users saw" table
    assert seen, text
    column = 3 + [s.name for s in SYMPTOMS].index("zero_view_displays")
    in_report = sum(int(r[column].strip(" |")) for r in seen)
    assert in_report == summary.phase("outage").symptoms["zero_view_displays"] > 0  # the terminal's figure
    # every probe a check deviated on is in the timeline, with the figure it deviated at
    deviated = [counted for _, counted in during_checks(naive_run) if counted > 0]
    if deviated:
        assert f"{ZERO_VIEWS}: {deviated[0]}" in text
    doc = json.loads((naive_run / JOURNAL_DOC).read_text())
    during = next((r for r in doc["reasons"] if r.startswith("deviated during the faults")), "")
    assert (ZERO_VIEWS in during) == bool(deviated)  # the verdict names it, even when the first check did not
