"""The post-mortem of a run, from its directory alone: ``timeline.png`` (success rate, p99 and the
symptoms the hypothesis probes per data center over time, power cuts and faults shaded, phases and every
deviated hypothesis check marked) and ``report.md`` (timeline,
impact per phase and data center, what users saw, detection and recovery).

``python -m chaos.observability.postmortem RUN_DIR`` rebuilds both.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or in CI
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from chaos.journal import EventName, headline
from chaos.observability.run_record import RunRecord, load_run, seen_series, series
from chaos.report import by_phase
from chaos.report_model import percentile
from chaos.rundir import AUDIT_FILE, JOURNAL_DOC, NOTES, PICTURE
from loadtest.requests_reader import RequestRow
from services.common.errors import BlackoutError
from services.common.symptoms import SYMPTOMS

SHADES = {"power": ("#d62728", 0.15), "fault": ("#ff7f0e", 0.15)}
TIMELINE_EVENTS = {
    EventName.START,
    EventName.LOAD_START,
    EventName.PHASE,
    EventName.POWER_OFF,
    EventName.POWER_ON,
    EventName.FAULT_ON,
    EventName.FAULT_OFF,
    EventName.PROFILE,
    EventName.HYPOTHESIS,
    EventName.RECOVERED,
    EventName.RELAPSED,
    EventName.ABORTED,
    EventName.END,
}
RECOVERED_SHARE = 0.95  # users count as recovered once success is back to 95% of the baseline's
PICTURED_SYMPTOMS = ("zero_view_displays", "stale_views")  # the outage's view counts: always drawn
SYMPTOM_STYLES = ("-", "--", ":", "-.")  # a line style per symptom (a data center keeps its colour)
_SYMPTOM_TITLES = {s.name: s.title for s in SYMPTOMS}


def bin_width(record: RunRecord) -> float:
    """About 60 points across the run, between 1 and 10 s each."""
    return min(10.0, max(1.0, round((record.end - record.start) / 60.0)))


def plotted_symptoms(record: RunRecord) -> list[str]:
    """What the hypothesis probes, and the view counts' symptoms (the outage's) whatever it probes."""
    return list(dict.fromkeys([*record.probed, *PICTURED_SYMPTOMS]))


def draw(record: RunRecord, path: Path) -> None:
    fig = figure(record)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def figure(record: RunRecord) -> Figure:
    """Success, p99, the symptoms the hypothesis probes and the request rate per data center over time."""
    width = bin_width(record)
    fig, (top, bottom, seen, rate) = plt.subplots(
        4, 1, figsize=(11, 10.5), sharex=True, constrained_layout=True, gridspec_kw={"height_ratios": [3, 3, 3, 1.5]}
    )
    nan = float("nan")  # an empty bin: a gap in the line, never a line drawn across it
    symptoms = plotted_symptoms(record)
    answered = seen_series(record, width)  # symptoms by when users saw them: as the hypothesis counts them
    for dc, bins in series(record, width).items():
        xs = [b.t for b in bins]
        (line,) = top.plot(xs, [nan if b.success is None else 100.0 * b.success for b in bins], marker=".", label=dc)
        bottom.plot(xs, [nan if b.p99_ms is None else b.p99_ms / 1000.0 for b in bins], marker=".", label=dc)
        for name, style in zip(symptoms, itertools.cycle(SYMPTOM_STYLES)):
            seen.plot(
                [b.t for b in answered.get(dc, [])],
                [nan if not b.requests else b.symptoms.get(name, 0) for b in answered.get(dc, [])],
                linestyle=style,
                marker=".",
                color=line.get_color(),
                label=f"{_SYMPTOM_TITLES[name]} @ {dc}",
            )
        rate.plot(xs, [b.requests / width for b in bins], label=dc)
    deviations = record.deviations()
    for axis in (top, bottom, seen, rate):
        shaded = set()
        for w in record.windows:
            color, alpha = SHADES[w.kind]
            name = f"{'power off' if w.kind == 'power' else 'fault'} {w.label}"
            axis.axvspan(
                w.start - record.start,
                w.end - record.start,
                color=color,
                alpha=alpha,
                label=None if name in shaded else name,
            )
            shaded.add(name)
        for _, t in record.phases:
            axis.axvline(t - record.start, color="grey", linestyle=":", linewidth=1)
        for n, (t, _) in enumerate(deviations):  # every check the verdict failed on, on every panel
            axis.axvline(
                t - record.start,
                color="#b00000",
                linewidth=0.8,
                alpha=0.7,
                label=f"hypothesis deviated ({len(deviations)} checks)" if n == 0 else None,
            )
        axis.grid(True, alpha=0.3)
    for phase, t in record.phases:
        top.annotate(
            phase,
            (t - record.start, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, 2),
            textcoords="offset points",
            fontsize=9,
            color="dimgrey",
            va="bottom",
        )  # above the plot
    for n, (t, probes) in enumerate(_first_of_each_spell(deviations)):
        late = t - record.start > 0.6 * (record.end - record.start)  # written leftwards, inside the picture
        seen.annotate(
            "deviated: " + "; ".join(probes),
            (t - record.start, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(-2 if late else 2, -10 - 10 * (n % 4)),
            textcoords="offset points",
            fontsize=8,
            color="#b00000",
            ha="right" if late else "left",
        )  # spells stacked, not overprinted
    top.set_ylim(-2, 105)
    top.set_ylabel("success rate (%)")
    top.legend(loc="lower left", fontsize=8)
    bottom.set_yscale("log")
    bottom.set_ylabel("p99 latency (s, log)")
    seen.set_ylabel("symptoms users saw\n(per bin, by answer: what\nthe hypothesis counts; symlog)")
    seen.set_yscale("symlog", linthresh=1)  # one 0-view display must show beside hundreds of stale counts
    seen.set_ylim(bottom=0, top=max(seen.get_ylim()[1], 10))  # no symptom at all: a 0-10 scale, not 0-0.05
    seen.legend(loc="upper left", fontsize=8)
    rate.set_ylabel("requests\nstarted /s")
    rate.set_ylim(bottom=0)
    rate.set_xlabel(
        f"seconds since the run started ({width:g} s bins)\nsuccess, p99 and requests by request start (a gap: no "
        "request started); symptoms by when the answer arrived (a gap: no answer)"
    )
    top.set_title(_title(record), pad=16)  # room for the phase names
    return fig


def _first_of_each_spell(
    deviations: list[tuple[float, list[str]]], gap_s: float = 5.0
) -> list[tuple[float, list[str]]]:
    """The first deviated check of each run of consecutive ones (one label per spell, not one per check)."""
    firsts, last = [], None
    for t, probes in deviations:
        if last is None or t - last > gap_s:
            firsts.append((t, probes))
        last = t
    return firsts


def _title(record: RunRecord) -> str:
    meta = record.meta
    what = meta.get("scenario", "run")
    return f"{what}: profile {meta.get('profile', '?')}, topology {meta.get('topology', '?')}"


def _clock(record: RunRecord, t: float) -> str:
    s = max(0.0, t - record.start)
    return f"+{int(s // 60)}:{s % 60:04.1f}"


def timeline(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events worth a line; the hypothesis only when its verdict or the probes that deviated change (it is
    checked every tick), as the terminal says it."""
    kept: list[dict[str, Any]] = []
    told: tuple[bool | None, tuple[str, ...]] = (None, ())
    for event in events:
        if event.get("event") not in TIMELINE_EVENTS:
            continue
        if event["event"] == EventName.HYPOTHESIS:
            said = headline(event.get("met"), event.get("probes", []))
            if said == told:
                continue
            told = said
        kept.append(event)
    return kept


def _describe(event: dict[str, Any]) -> str:
    kind = event["event"]
    if kind == EventName.HYPOTHESIS:
        broken = [
            f"{p.get('probe')}: {p.get('shown')}" for p in event.get("probes", []) if p.get("status") == "deviated"
        ]
        verdict = "holds" if event.get("met") else "**deviated**"
        return f"hypothesis {verdict} ({event.get('phase')})" + (": " + "; ".join(broken) if broken else "")
    details = {k: v for k, v in event.items() if k not in ("t", "event", "pids", "instances", "output", "results")}
    if kind == EventName.PHASE:
        return f"phase **{event.get('phase')}** begins"
    if kind in (EventName.POWER_OFF, EventName.POWER_ON):
        took = f" ({float(event['seconds']):.1f} s)" if "seconds" in event else ""
        return f"**{kind}** {event.get('dc')}{took}"
    return " ".join([kind, ", ".join(f"{k}={v}" for k, v in details.items() if k != "seconds")]).strip()


def _ms(value: float | None) -> str:
    return "-" if value is None else (f"{value:.0f} ms" if value < 10_000 else f"{value / 1000:.1f} s")


def _pct(ok: int, n: int) -> str:
    return f"{100.0 * ok / n:.1f}%" if n else "-"


def impact_rows(record: RunRecord) -> list[tuple[str, str, list[Any]]]:
    """(phase, dc, requests) for each phase and data center, in time order; a request in the phase the terminal's
    and summary.json's tables put it in (chaos/report.py: by_phase)."""
    end = next((float(e["t"]) for e in record.events if e.get("event") == EventName.END), None)
    phased = by_phase(record.requests, [(t, name) for name, t in record.phases], end)
    out = []
    for phase, rows in phased.rows.items():
        by_dc: dict[str, list[RequestRow]] = {}
        for r in rows:
            by_dc.setdefault(r.dc, []).append(r)
        out += [(phase, dc, by_dc[dc]) for dc in sorted(by_dc)]
    return out


def detection_and_recovery(record: RunRecord) -> list[str]:
    first = record.windows[0] if record.windows else None
    if first is None:
        return ["No power cut or fault in the journal: nothing to detect."]
    lines = []
    errors = [r.t for r in record.requests if not r.ok and r.t >= first.start]
    lines.append(
        f"- First user error after {first.kind} {first.label} went down: "
        + (f"{errors[0] - first.start:.1f} s later." if errors else "none: users saw no error.")
    )
    before = [r for r in record.requests if r.t < first.start]
    base = sum(r.ok for r in before) / len(before) if before else 1.0
    width = bin_width(record)
    after = [b for bins in series(record, width).values() for b in bins if record.start + b.t - width / 2 >= first.end]
    by_time: dict[float, list[Any]] = {}
    for b in after:
        by_time.setdefault(b.t, []).append(b)
    recovered = next(
        (t for t, bs in sorted(by_time.items()) if all((b.success or 0) >= RECOVERED_SHARE * base for b in bs)), None
    )
    lines.append(f"- Baseline success before it: {100 * base:.1f}%.")
    lines.append(
        f"- Users back to {RECOVERED_SHARE:.0%} of the baseline in every data center "
        + (
            f"{record.start + recovered - width / 2 - first.end:.0f} s after {first.label} came back."
            if recovered is not None
            else "never before the run ended: **not recovered**."
        )
    )
    return lines


def notes(record: RunRecord) -> str:
    meta = record.meta
    out = [f"# Post-mortem: {_title(record)}", ""]
    facts = [f"{k} {meta[k]}" for k in ("scenario", "profile", "topology", "seed", "users") if k in meta]
    out += [f"Run `{record.run_dir.name}`: " + (", ".join(facts) or "no start event in the journal") + ".", ""]
    out += [
        f"![success rate, p99 and symptoms per data center]({PICTURE})",
        "",
        "In the picture, success, p99 and the request rate are binned by when each request started; the symptoms by "
        "when its answer arrived: when users saw them, and what each hypothesis check counts (the answers of its "
        "window). The tables put a request in the phase it started in (or the outage, if in flight when it began), "
        "as the terminal's tables do.",
        "",
        "## Timeline",
        "",
        "| time | event |",
        "|---|---|",
    ]
    out += [f"| {_clock(record, float(e['t']))} | {_describe(e)} |" for e in timeline(record.events)]
    out += ["", "## Impact", "", "| phase | dc | requests | success | p50 | p99 |", "|---|---|---:|---:|---:|---:|"]
    rows = impact_rows(record)
    for phase, dc, rs in rows:
        lat = [r.latency_ms for r in rs]
        out.append(
            f"| {phase} | {dc} | {len(rs)} | {_pct(sum(r.ok for r in rs), len(rs))} | "
            f"{_ms(percentile(lat, 50))} | {_ms(percentile(lat, 99))} |"
        )
    titles = " | ".join(s.title for s in SYMPTOMS)
    out += [
        "",
        "## What users saw",
        "",
        f"| phase | dc | failed actions | {titles} |",
        "|---|---|---|" + "---:|" * len(SYMPTOMS),
    ]
    for phase, dc, rs in rows:
        failed = _failed_actions(rs)
        sums = [sum(r.symptom(s.name) for r in rs) for s in SYMPTOMS]
        out.append(f"| {phase} | {dc} | {failed} | " + " | ".join(str(s) for s in sums) + " |")
    out += ["", "## Detection and recovery", "", *detection_and_recovery(record), ""]
    out += verdict_and_audit(record.run_dir)
    return "\n".join(out)


def verdict_and_audit(run_dir: Path) -> list[str]:
    """The run's verdict (journal.json) and its data audit (audit.json), when the run wrote them."""
    out: list[str] = []
    doc = _json(run_dir / JOURNAL_DOC)
    if doc is not None:
        verdict = "**deviated**" if doc.get("deviated") else "held"
        said = f"The steady-state hypothesis {verdict} (run {doc.get('status')})."
        if doc.get("load_stopped_at_s") is not None:  # no users after that: nothing was measured, either way
            said = f"**No verdict**: the load stopped at {doc['load_stopped_at_s']:g} s into the scenario."
        out += ["## Verdict", "", said, ""]
        out += [f"- {reason}" for reason in doc.get("reasons", [])]
        recovery = doc.get("recovery") or {}
        if recovery:
            after = recovery.get("recovered_after_s")
            out.append(
                f"- recovered {'never, within the run' if after is None else f'{after:g} s'} after the last "
                f"fault was removed (goal: within {recovery.get('within_s')} s)"
            )
        out.append("")
    audit = _json(run_dir / AUDIT_FILE)
    if audit is not None:
        writes = audit.get("writes", {})
        out += [
            "## Data audit",
            "",
            f"Replication: {audit.get('design')}; view writes: "
            + ", ".join(f"{n} {k}" for k, n in sorted(writes.items())),
            "",
            "| instance | acked present | lost acked | double counted | unknown applied |",
            "|---|---:|---:|---:|---:|",
        ]
        out += [
            f"| {v['instance']} | {v['acked_present']} | {v['lost_acked']} | {v['double_counted']} | "
            f"{v['unknown_applied']} |"
            for v in audit.get("views", [])
        ]
        out += ["", *[f"- {reason}" for reason in audit.get("reasons", [])], ""]
    return out


def _json(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data


def _failed_actions(rs: Sequence[RequestRow]) -> str:
    counts: dict[str, list[int]] = {}
    for r in rs:
        counts.setdefault(r.action, [0, 0])[0] += 1
        counts[r.action][1] += 0 if r.ok else 1
    failing = [f"{a} {bad}/{n}" for a, (n, bad) in sorted(counts.items()) if bad]
    return ", ".join(failing) or "none"


def write_postmortem(run_dir: Path) -> tuple[Path, Path]:
    record = load_run(run_dir)
    picture, text = run_dir / PICTURE, run_dir / NOTES
    draw(record, picture)
    text.write_text(notes(record), encoding="utf-8")
    return picture, text


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m chaos.observability.postmortem RUN_DIR", file=sys.stderr)
        return 2
    try:
        for path in write_postmortem(Path(argv[0])):
            print(path)
    except BlackoutError as exc:
        print(f"postmortem: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
