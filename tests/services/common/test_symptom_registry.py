"""The symptom registry is the one list: requests.csv, the user metrics, the gateway's labels, the scenarios'
probes and every table of the report all follow it, in its order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from rich.console import Console

from chaos.engine.hypothesis import evaluate
from chaos.engine.scenario import Probe
from chaos.observability.postmortem import notes
from chaos.observability.run_record import load_run
from chaos.report import build_summary, phases_csv_columns
from chaos.report_render import render_summary
from chaos.rundir import REQUESTS_FILE
from loadtest.metrics import UserMetrics
from loadtest.records import REQUEST_COLUMNS, CsvRecorder, request_row
from loadtest.requests_reader import read_all
from services.common import symptoms
from services.common.metrics import EARNINGS_SERVED, FEED_ITEMS
from services.common.symptoms import NAMES, RECORDED, SYMPTOMS
from services.gateway.symptoms import EARNINGS_STATUSES, SOURCES, VIEW_STATUSES

T0 = 1_700_000_000.0
TITLES = [s.title for s in SYMPTOMS]


@pytest.fixture
def each_symptom_once(tmp_path: Path) -> Path:
    """A one-phase run whose requests show every symptom exactly once, each on its own action's request."""
    (tmp_path / "journal.jsonl").write_text(
        "".join(
            json.dumps(e) + "\n"
            for e in [{"t": T0, "event": "phase", "phase": "baseline"}, {"t": T0 + 60, "event": "end"}]
        )
    )
    recorder = CsvRecorder(tmp_path / REQUESTS_FILE, REQUEST_COLUMNS)
    for n, s in enumerate(SYMPTOMS):
        shown = {s.name: 1} if s.recorded else {}
        recorder.write(
            request_row(
                t=T0 + n,
                user="u",
                dc="dc-east",
                action=s.action,
                ok=int(s.recorded),
                status=200 if s.recorded else 503,
                latency_ms=10.0,
                **shown,
            )
        )
    recorder.close()
    return tmp_path


def test_names_are_unique_and_every_action_is_a_user_action():
    assert len(set(NAMES)) == len(NAMES)
    assert {s.action for s in SYMPTOMS} <= {"login", "feed", "view", "upload", "earnings"}


def test_requests_csv_has_a_column_per_recorded_symptom_in_order():
    assert [c for c in REQUEST_COLUMNS if c in NAMES] == list(RECORDED)
    assert all(request_row(t=1, user="u", dc="d", action="feed")[name] == 0 for name in RECORDED)


def test_scenario_probes_take_every_symptom_and_refuse_others_naming_them():
    for name in NAMES:
        Probe.model_validate({"symptom": {"name": name, "max": 0}})
    with pytest.raises(ValidationError, match="unknown symptom 'ghost_feeds'; symptoms: " + ", ".join(NAMES)):
        Probe.model_validate({"symptom": {"name": "ghost_feeds", "max": 0}})


def test_the_reader_the_probes_and_the_report_count_each_symptom_once(each_symptom_once: Path):
    rows = read_all(each_symptom_once / REQUESTS_FILE)
    for name in NAMES:
        probe = Probe.model_validate({"symptom": {"name": name, "max": 0}})
        assert evaluate(probe, rows, 1).value == 1, name
    summary = build_summary(each_symptom_once)
    assert summary.phases[0].symptoms == dict.fromkeys(NAMES, 1)  # in the registry's order too
    assert [c for c in phases_csv_columns(summary) if c in NAMES] == list(NAMES)


def test_the_terminal_and_the_post_mortem_tables_list_every_symptom_in_order(each_symptom_once: Path):
    console = Console(record=True, width=200)
    render_summary(build_summary(each_symptom_once), console)
    text = console.export_text()
    at = [text.index(title) for title in TITLES]
    assert at == sorted(at)
    markdown = notes(load_run(each_symptom_once))
    assert "| phase | dc | failed actions | " + " | ".join(TITLES) + " |" in markdown
    assert " | ".join(["1"] * len(NAMES)) + " |" in markdown


def test_user_metrics_label_each_recorded_symptom_by_its_name():
    metrics = UserMetrics()
    metrics.observe(
        request_row(t=1, user="u", dc="dc-east", action="feed", ok=1, status=200, **dict.fromkeys(RECORDED, 2))
    )
    for name in RECORDED:
        labels = {"dc": "dc-east", "symptom": name}
        assert metrics.registry.get_sample_value("blackout_user_symptoms_total", labels) == 2


def test_the_gateway_counts_each_symptom_it_can_see_under_a_label_it_allows():
    closed = {
        (symptoms.FEED_ITEMS, "source"): SOURCES,
        (symptoms.FEED_ITEMS, "views_status"): VIEW_STATUSES,
        (symptoms.EARNINGS_SERVED, "status"): EARNINGS_STATUSES,
    }
    counters = {c.describe()[0].name + "_total" for c in (FEED_ITEMS, EARNINGS_SERVED)}  # the names they export
    assert {symptoms.FEED_ITEMS, symptoms.EARNINGS_SERVED} == counters
    served = [s.served_as for s in SYMPTOMS if s.served_as is not None]
    assert served
    for where in served:
        assert set(where.values) <= closed[(where.metric, where.label)], where
