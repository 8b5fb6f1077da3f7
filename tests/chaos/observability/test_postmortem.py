"""The post-mortem of a small synthetic run: a picture and notes from the run directory alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos.observability.postmortem import main, write_postmortem
from chaos.observability.run_record import load_run
from loadtest.records import REQUEST_COLUMNS, CsvRecorder, request_row
from services.common.errors import ConfigError

T0 = 1_700_000_000.0


def synthetic_run(run_dir: Path) -> Path:
    """baseline 0-20 s, dc-east dark 20-40 s, recovery 40-60 s; a latency fault 45-50 s."""
    events = [
        (0, {"event": "start", "scenario": "power-loss", "profile": "naive", "topology": "fragile", "seed": 7}),
        (0, {"event": "phase", "phase": "baseline"}),
        (20, {"event": "phase", "phase": "outage"}),
        (20, {"event": "power-off", "dc": "dc-east", "instances": ["views-east"], "seconds": 0.01}),
        (40, {"event": "phase", "phase": "recovery"}),
        (40, {"event": "power-on", "dc": "dc-east", "seconds": 1.5}),
        (45, {"event": "fault-on", "id": "slow-1", "action": {"latency": {"ms": 200}, "for": "5s"}}),
        (50, {"event": "fault-off", "id": "slow-1", "kind": "latency"}),
        (60, {"event": "end"}),
    ]
    run_dir.mkdir(exist_ok=True)
    (run_dir / "journal.jsonl").write_text("".join(json.dumps({"t": T0 + s, **e}) + "\n" for s, e in events))
    requests = CsvRecorder(run_dir / "requests.csv", REQUEST_COLUMNS)
    for step in range(240):  # one request per data center every 0.25 s
        s = step * 0.25
        dark = 20 <= s < 40
        requests.write(
            request_row(
                t=T0 + s,
                user="u1",
                dc="dc-east",
                action="feed",
                ok=int(not dark),
                status=0 if dark else 200,
                latency_ms=10_000.0 if dark else 40.0,
            )
        )
        west_fails = dark and step % 2 == 0
        requests.write(
            request_row(
                t=T0 + s,
                user="u2",
                dc="dc-west",
                action="login" if west_fails else "feed",
                ok=int(not west_fails),
                status=503 if west_fails else 200,
                latency_ms=3_000.0 if dark else 50.0,
                zero_view_displays=10 if dark and not west_fails else 0,
            )
        )
    requests.close()
    return run_dir


def test_picture_and_notes_tell_the_outage(tmp_path):
    picture, notes = write_postmortem(synthetic_run(tmp_path / "run"))
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 20_000
    text = notes.read_text()
    assert "# Post-mortem: power-loss: profile naive, topology fragile" in text
    assert "| +0:20.0 | **power-off** dc-east (0.0 s) |" in text
    assert "| +0:45.0 | fault-on id=slow-1, action={'latency': {'ms': 200}, 'for': '5s'} |" in text
    assert "| outage | dc-east | 80 | 0.0% | 10.0 s | 10.0 s |" in text
    assert "| outage | dc-west | 80 | 50.0% | 3000 ms | 3000 ms |" in text
    assert "| baseline | dc-west | 80 | 100.0% | 50 ms | 50 ms |" in text
    assert (
        "| phase | dc | failed actions | zero-view displays | stale/unavailable view counts | earnings missing | "
        "failed logins | failed uploads | repeated feeds | generic feeds |" in text
    )
    assert (
        "| outage | dc-west | login 40/40 | 400 | 0 | 0 | 40 | 0 | 0 | 0 |" in text
    )  # 40 feeds showed 10 zero views each
    assert "First user error after power dc-east went down: 0.0 s later." in text
    assert "came back." in text and "not recovered" not in text


def test_windows_pair_power_and_faults_and_close_at_the_end(tmp_path):
    run = synthetic_run(tmp_path / "run")
    with (run / "journal.jsonl").open("a") as journal:
        journal.write(json.dumps({"t": T0 + 55, "event": "power-off", "dc": "dc-west"}) + "\n")
    record = load_run(run)
    spans = [(w.kind, w.label, w.start - T0, round(w.end - T0, 2)) for w in record.windows]
    assert spans == [("power", "dc-east", 20, 40), ("fault", "latency", 45, 50), ("power", "dc-west", 55, 60)]


def test_a_run_that_never_recovers_says_so(tmp_path):
    run = synthetic_run(tmp_path / "run")
    lines = (run / "journal.jsonl").read_text().splitlines()
    (run / "journal.jsonl").write_text("\n".join(line for line in lines if "power-on" not in line) + "\n")
    text = write_postmortem(run)[1].read_text()
    assert "**not recovered**" in text


def test_bad_input_is_named_by_file_and_line(tmp_path, capsys):
    with pytest.raises(ConfigError, match="requests.csv: not found"):
        load_run(tmp_path)
    run = synthetic_run(tmp_path / "run")
    (run / "requests.csv").write_text("t,dc,action,ok\n1,dc-east,feed,1\n")
    with pytest.raises(ConfigError, match="missing column\\(s\\) latency_ms"):
        load_run(run)
    (run / "requests.csv").write_text("t,dc,action,ok,latency_ms\n1,dc-east,feed,1,fast\n")
    with pytest.raises(ConfigError, match="requests.csv: line 2: column 'latency_ms'"):
        load_run(run)
    assert main([str(run)]) == 2
    assert "postmortem: " in capsys.readouterr().err


def test_a_stretch_without_requests_is_a_gap_not_a_line(tmp_path):
    from chaos.observability.run_record import series

    run = synthetic_run(tmp_path / "run")
    rows = (run / "requests.csv").read_text().splitlines()
    kept = [rows[0]] + [r for r in rows[1:] if not (T0 + 20 <= float(r.split(",")[0]) < T0 + 40 and ",dc-east," in r)]
    (run / "requests.csv").write_text("\n".join(kept) + "\n")  # dc-east's users stuck: nothing started
    east = series(load_run(run), 1.0)["dc-east"]
    assert [b.success for b in east[19:22]] == [1.0, None, None] and east[20].requests == 0
    assert east[40].success == 1.0


def test_the_timeline_shows_the_hypothesis_only_when_its_verdict_or_its_deviated_probes_change(tmp_path):
    run = synthetic_run(tmp_path / "run")
    probe = {"probe": "feed success >= 90%", "status": "deviated", "shown": "41%"}
    zeros = {"probe": "zero_view_displays <= 0", "status": "deviated", "shown": "20"}
    with (run / "journal.jsonl").open("a") as journal:
        for s, probes in ((21, []), (22, [probe]), (23, [probe]), (25, [probe, zeros]), (27, [probe, zeros]), (41, [])):
            event = {"t": T0 + s, "event": "hypothesis", "phase": "during", "met": not probes, "probes": probes}
            journal.write(json.dumps(event) + "\n")
    text = write_postmortem(run)[1].read_text()
    assert text.count("| hypothesis") == 4
    assert "| +0:22.0 | hypothesis **deviated** (during): feed success >= 90%: 41% |" in text
    # still deviated, and now on 0-view displays too: a line of its own (the terminal prints it as well)
    assert (
        "| +0:25.0 | hypothesis **deviated** (during): feed success >= 90%: 41%; zero_view_displays <= 0: 20 |" in text
    )


def test_the_picture_draws_what_the_hypothesis_probes_and_marks_every_deviated_check(tmp_path):
    from chaos.observability.postmortem import figure

    run = synthetic_run(tmp_path / "run")
    (run / "scenario.yaml").write_text(
        "hypothesis:\n  probes:\n    - success_rate: {action: feed, min: 0.9}\n    - symptom: {name: zero_view_displays, max: 0}\n"
    )
    probe = {"probe": "zero_view_displays <= 0", "status": "deviated", "shown": "400"}
    with (run / "journal.jsonl").open("a") as journal:
        for s, met, phase in (
            (5, False, "baseline"),
            (22, False, "during"),
            (24, False, "during"),
            (26, True, "during"),
            (38, False, "during"),
            (45, False, "recovery"),
        ):
            event = {
                "t": T0 + s,
                "event": "hypothesis",
                "phase": phase,
                "met": met,
                "probes": [] if met else [probe],
            }
            journal.write(json.dumps(event) + "\n")
    fig = figure(load_run(run))
    panels = {axis.get_ylabel().split("\n")[0]: axis for axis in fig.axes}
    seen = panels["symptoms users saw"]
    lines = {line.get_label(): line for line in seen.get_lines()}
    # the probed symptom per data center, as many as users saw (40 feeds at dc-west x 10 zero views)
    assert sum(v for v in lines["zero-view displays @ dc-west"].get_ydata() if v == v) == 400
    assert sum(v for v in lines["zero-view displays @ dc-east"].get_ydata() if v == v) == 0
    assert "stale/unavailable view counts @ dc-east" in lines
    # each deviated check the verdict judges is a line on every panel, at its time; the check that held is not, nor
    # the baseline's (the load settling) or the recovery's (its time is the recovery figure)
    for axis in fig.axes:
        marks = sorted(line.get_xdata()[0] for line in axis.get_lines() if line.get_color() == "#b00000")
        assert marks == [22, 24, 38]
    labels = [text.get_text() for text in seen.texts]
    assert labels == ["deviated: zero_view_displays <= 0", "deviated: zero_view_displays <= 0"]  # one per spell
