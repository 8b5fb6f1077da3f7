"""chaos.report: phase assignment, statistics, symptoms, files and rendering from a synthetic run dir."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from rich.console import Console

from chaos.report import (
    build_summary,
    load_summary,
    write_summary,
)
from chaos.report_model import percentile
from chaos.report_render import render_comparison, render_summary
from loadtest.records import REQUEST_COLUMNS
from services.common.errors import ConfigError

T0 = 1_700_000_000.0  # baseline starts at T0, outage at T0+10, recovery at T0+20, end at T0+30


def _journal(run_dir: Path, extra: list[dict] | None = None) -> None:
    events = [
        {"t": T0 - 5, "event": "start"},
        {"t": T0, "event": "phase", "phase": "baseline"},
        {"t": T0 + 10, "event": "phase", "phase": "outage"},
        {"t": T0 + 10.5, "event": "power-off", "dc": "dc-east"},
        {"t": T0 + 20, "event": "phase", "phase": "recovery"},
        {"t": T0 + 30, "event": "end"},
    ] + (extra or [])
    (run_dir / "journal.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))


def _row(t: float, action: str, ok: int = 1, dc: str = "dc-east", latency: float = 10.0, **kw) -> dict:
    row = {c: 0 for c in REQUEST_COLUMNS}
    row.update(
        t=t,
        user="viewer-0001",
        dc=dc,
        action=action,
        ok=ok,
        status=200 if ok else 503,
        latency_ms=latency,
        attempts=1,
        calls=1,
        error="" if ok else "HTTP 503",
    )
    row.update(kw)
    return row


def _requests(run_dir: Path, rows: list[dict]) -> None:
    with open(run_dir / "requests.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=REQUEST_COLUMNS)
        w.writeheader()
        w.writerows(rows)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.split("│")[1:-1]]


def _baseline_rows() -> list[dict]:
    # ten baseline feeds on dc-east with latencies 1..10 ms, all ok
    return [_row(T0 + 0.5 + i * 0.1, "feed", latency=float(i + 1)) for i in range(10)]


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    d = tmp_path / "run-a"
    d.mkdir()
    _journal(d)
    rows = [_row(T0 - 1, "login"), _row(T0 + 31, "feed")]  # warm-up and after the end: left out
    rows += _baseline_rows()
    rows += [_row(T0 + 1, "login", dc="dc-west", latency=50.0)]
    outage = [
        _row(T0 + 10.0, "feed", ok=0, status=0, latency=10000.0, attempts=0, calls=0),  # starts exactly at the mark
        _row(T0 + 11, "feed", ok=0, latency=3000.0, attempts=3, calls=1),
        _row(T0 + 12, "feed", dc="dc-west", latency=20.0, attempts=2, calls=2, zero_view_displays=3, stale_views=4),
        _row(
            T0 + 12.5,
            "feed",
            dc="dc-west",
            latency=30.0,
            attempts=2,
            calls=2,
            stale_views=10,
            repeated_feeds=1,
            generic_feeds=1,
        ),
        _row(T0 + 13, "login", ok=0, latency=5000.0, attempts=3, calls=1),
        _row(T0 + 14, "upload", ok=0, latency=40.0, attempts=3, calls=1),
        _row(T0 + 15, "earnings", ok=1, latency=25.0, earnings_missing=1, attempts=3, calls=1),
        _row(T0 + 16, "earnings", ok=0, latency=35.0, earnings_missing=1, attempts=3, calls=1),
        _row(T0 + 19.99, "view", dc="dc-west", latency=15.0, attempts=1, calls=1),
    ]
    recovery = [_row(T0 + 21, "feed", latency=12.0), _row(T0 + 22, "view", latency=8.0)]
    _requests(d, rows + outage[::-1] + recovery)  # rows out of time order, as locust writes them
    return d


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([], 50) is None


def test_phase_assignment_and_exclusions(run_dir: Path) -> None:
    s = build_summary(run_dir)
    assert s.run == "run-a"
    assert [p.phase for p in s.phases] == ["baseline", "outage", "recovery"]
    assert s.warmup_requests == 1 and s.after_end_requests == 1
    base, out, rec = s.phases
    assert base.requests == 11 and out.requests == 9 and rec.requests == 2
    assert (base.t_start, base.t_end) == (T0, T0 + 10)
    assert (rec.t_start, rec.t_end) == (T0 + 20, T0 + 30)
    assert out.actions["feed"].count == 4  # the row starting exactly at T0+10 belongs to the outage


def test_success_rates_and_latency_percentiles(run_dir: Path) -> None:
    s = build_summary(run_dir)
    base, out, rec = s.phases
    feed = base.actions["feed"]
    assert (feed.count, feed.ok, feed.success_rate) == (10, 10, 1.0)
    assert (feed.p50_ms, feed.p99_ms) == (5.0, 10.0)
    ofeed = out.actions["feed"]
    assert ofeed.success_rate == 0.5
    assert ofeed.p50_ms == 30.0 and ofeed.p99_ms == 10000.0  # failures count in latency
    assert out.by_dc["dc-east"]["feed"].success_rate == 0.0
    assert out.by_dc["dc-west"]["feed"].success_rate == 1.0
    assert out.feed_success_by_dc == {"dc-east": 0.0, "dc-west": 1.0}
    assert base.feed_success_by_dc == {"dc-east": 1.0, "dc-west": None}  # dc-west only logged in
    assert list(out.actions) == ["login", "feed", "view", "upload", "earnings"]
    assert rec.success_rate == 1.0


def test_symptoms_and_amplification(run_dir: Path) -> None:
    s = build_summary(run_dir)
    base, out, rec = s.phases
    sy = out.symptoms
    assert sy == {
        "zero_view_displays": 3,
        "stale_views": 14,
        "earnings_missing": 2,
        "failed_logins": 1,
        "failed_uploads": 1,
        "repeated_feeds": 1,
        "generic_feeds": 1,
    }
    assert (out.attempts, out.calls) == (20, 10)
    assert out.retry_amplification == 2.0
    assert base.retry_amplification == 1.0
    assert base.symptoms["failed_logins"] == 0


def test_amplification_none_without_calls(tmp_path: Path) -> None:
    _journal(tmp_path)
    _requests(tmp_path, [_row(T0 + 1, "feed", ok=0, status=0, attempts=0, calls=0)])
    p = build_summary(tmp_path).phases[0]
    assert p.retry_amplification is None
    assert build_summary(tmp_path).phase("outage").requests == 0


def test_journal_without_end_is_open_ended(tmp_path: Path) -> None:
    (tmp_path / "journal.jsonl").write_text(json.dumps({"t": T0, "event": "phase", "phase": "baseline"}) + "\n")
    _requests(tmp_path, [_row(T0 + 1000, "feed")])
    s = build_summary(tmp_path)
    assert s.phases[0].requests == 1 and s.phases[0].t_end is None


def test_write_summary_files(run_dir: Path) -> None:
    s = build_summary(run_dir)
    json_path, csv_path = write_summary(s, run_dir)
    assert json.loads(json_path.read_text())["phases"][1]["symptoms"]["zero_view_displays"] == 3
    assert load_summary(json_path) == s
    rows = list(csv.DictReader(open(csv_path)))
    assert [r["phase"] for r in rows] == ["baseline", "outage", "recovery"]
    assert rows[1]["feed_success_rate"] == "0.5"
    assert rows[1]["retry_amplification"] == "2.0"
    assert rows[0]["feed_p99_ms"] == "10.0"
    assert rows[0]["upload_count"] == ""  # no uploads in baseline: empty, not zero
    assert rows[1]["feed_success_dc-west"] == "1.0"


def test_render_summary_contains_numbers(run_dir: Path) -> None:
    console = Console(record=True, width=200)
    render_summary(build_summary(run_dir), console)
    text = console.export_text()
    for expected in (
        "baseline",
        "outage",
        "recovery",
        "100.0%",
        "50.0%",
        "10000",
        "zero-view displays",
        "2.00x",
        "feed @ dc-west",
        "failed logins",
        "earnings missing",
        "warm-up",
    ):
        assert expected in text, expected
    zero_line = next(line for line in text.splitlines() if "zero-view displays" in line)
    assert _cells(zero_line) == ["zero-view displays", "0", "3", "0"]
    feed_line = next(line for line in text.splitlines() if _cells(line)[:1] == ["feed"])
    assert _cells(feed_line) == ["feed", "100.0%  5/10", "50.0%  30/10000", "100.0%  12/12"]


def test_render_comparison_side_by_side(run_dir: Path, tmp_path: Path) -> None:
    b_dir = tmp_path / "run-b"
    b_dir.mkdir()
    _journal(b_dir)
    _requests(
        b_dir, _baseline_rows() + [_row(T0 + 11, "feed", latency=77.0, attempts=5, calls=1, zero_view_displays=9)]
    )
    a, b = build_summary(run_dir), build_summary(b_dir)
    console = Console(record=True, width=200)
    render_comparison(a, b, console)
    text = console.export_text()
    assert "run-a" in text and "run-b" in text
    outage_feed = [_cells(line) for line in text.splitlines() if _cells(line)[:1] == ["feed"]][1]
    assert outage_feed == ["feed", "50.0%", "100.0%", "30", "77", "10000", "77"]  # ok% A B, p50 A B, p99 A B
    zero_line = next(line for line in text.splitlines() if "zero-view displays" in line)
    assert _cells(zero_line) == ["zero-view displays", "0", "0", "3", "9", "0", "0"]
    assert "5.00x" in text and "2.00x" in text


@pytest.mark.parametrize(
    "name, content, needle",
    [
        ("journal.jsonl", '{"t": 1, "event": "phase", "phase": "baseline"}\nnot json\n', "line 2"),
        ("journal.jsonl", '{"t": "soon", "event": "phase", "phase": "baseline"}\n', "'t'"),
        ("journal.jsonl", '{"t": 1, "event": "power-off"}\n', "no phase marks"),
        ("requests.csv", "t,user\n1,u\n", "missing column(s) dc, action, ok, latency_ms"),
        ("requests.csv", ",".join(REQUEST_COLUMNS) + "\nabc,u,dc-east,feed,1,200,1,1,1,0,0,0,0,0,\n", "line 2"),
        ("requests.csv", ",".join(REQUEST_COLUMNS) + "\n1,u,dc-east,feed,1\n", "line 2"),
    ],
)
def test_malformed_files_name_the_file(run_dir: Path, name: str, content: str, needle: str) -> None:
    (run_dir / name).write_text(content)
    with pytest.raises(ConfigError) as info:
        build_summary(run_dir)
    assert info.value.source.endswith(name)
    assert needle in info.value.reason


@pytest.mark.parametrize("name", ["journal.jsonl", "requests.csv"])
def test_missing_files_name_the_file(run_dir: Path, name: str) -> None:
    (run_dir / name).unlink()
    with pytest.raises(ConfigError) as info:
        build_summary(run_dir)
    assert name in str(info.value) and "not found" in info.value.reason


def test_a_request_in_flight_when_the_power_goes_out_counts_in_the_outage(tmp_path: Path) -> None:
    _journal(tmp_path)
    _requests(
        tmp_path,
        [
            _row(T0 + 9.9, "feed", ok=0, latency=3000.0),  # started in the baseline, hit by the power cut
            _row(T0 + 9.9, "feed", latency=50.0),  # finished before it: stays in the baseline
            _row(T0 + 19.9, "feed", ok=0, latency=3000.0),  # in flight at power-on: stays in the outage
        ],
    )
    summary = build_summary(tmp_path)
    assert summary.phase("baseline").actions["feed"].count == 1
    assert summary.phase("baseline").actions["feed"].success_rate == 1.0
    assert summary.phase("outage").actions["feed"].count == 2
    assert summary.phase("recovery") is None or "feed" not in summary.phase("recovery").actions
