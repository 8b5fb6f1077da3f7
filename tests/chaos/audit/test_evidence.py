"""The audit's evidence, on a real run: one short run of the resilient profile that switches to naive for a few
seconds under load (produced once for the module), then copies of its directory with a piece of evidence
deleted or changed. Each is a failed audit naming what is wrong; none passes on what it did not see."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest
from fakes.scenarios import variant
from rich.console import Console

from chaos.audit.engine import audit_after_run
from chaos.audit.ledger import view_writes
from chaos.cli import main
from chaos.engine.run import PROJECT_ROOT, RunOptions
from chaos.journal import EventName
from chaos.stack import run_scenario
from services.views import aggregates

RESILIENT = PROJECT_ROOT / "profiles" / "resilient.yaml"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("evidence")
    scenario = variant(
        root,
        "dc-power-loss",
        load={"users": 6, "spawn_rate": 6},
        duration="16s",
        timeline=[{"at": "3s", "profile": "naive", "for": "4s"}],
        hypothesis={"window": "5s", "min_requests": 5, "probes": [{"success_rate": {"action": "feed", "min": 0.5}}]},
    )
    options = RunOptions(
        scenario=scenario, profile=RESILIENT, seed=11, runs_root=root / "runs", any_ports=True, observe=False
    )
    return run_scenario(options, Console(record=True, width=160)).run_dir


@pytest.fixture
def copy(run_dir, tmp_path) -> Callable[[str], Path]:
    def make(name: str = "run") -> Path:
        target = tmp_path / name
        shutil.copytree(run_dir, target)
        (target / "audit.json").unlink()
        return target

    return make


def audit(path: Path, capsys) -> tuple[int, dict, str]:
    code = main(["audit", str(path)])
    return code, json.loads((path / "audit.json").read_text()), capsys.readouterr().out


def test_the_design_comes_from_every_profile_the_run_ran_under(run_dir, copy, capsys):
    code, found, out = audit(copy(), capsys)
    assert code == 0, found["reasons"]
    assert found["profiles"] == ["resilient", "naive", "resilient"]  # profile.yaml, then the journal's switches
    assert found["design"] == "async" and not found["promises_no_loss"]  # the weakest: naive ran for 4 s
    assert found["writes"]["acked"] > 0 and found["earnings_checked"] > 0 and found["users_equal"] is True
    assert "profiles resilient, naive, resilient" in out


def test_a_missing_replica_database_is_a_failed_audit_naming_it(copy, capsys):
    run = copy()
    (run / "data" / "views-west.sqlite3").unlink()
    code, found, out = audit(run, capsys)
    assert code == 1 and found["complete"] is False
    assert found["reasons"] == [
        f"audit: missing evidence: {run / 'data' / 'views-west.sqlite3'} is missing: "
        "the views replica views-west of dc-west cannot be checked"
    ]
    assert "views-west.sqlite3" in out


def test_a_missing_ledger_is_a_failed_audit_not_zero_writes(copy, capsys):
    run = copy()
    (run / "writes.csv").unlink()
    code, found, _ = audit(run, capsys)
    assert code == 1 and "writes" not in found
    assert [r for r in found["reasons"] if "writes.csv is missing" in r] == found["reasons"]


def test_a_missing_or_unreadable_profile_is_named_never_taken_for_async(copy, capsys):
    run = copy()
    (run / "profile.yaml").unlink()
    code, found, _ = audit(run, capsys)
    assert code == 1 and len(found["reasons"]) == 1 and "profile.yaml: cannot read" in found["reasons"][0]
    switched = copy("switched")  # the copy of the profile switched to, unreadable
    (switched / "profile-naive.yaml").write_text("name: naive\nreplication: [")
    code, found, _ = audit(switched, capsys)
    assert code == 1 and len(found["reasons"]) == 1
    assert "profile-naive.yaml: not valid YAML" in found["reasons"][0]


def _acked(run: Path) -> str:
    return next(e for e, w in view_writes(run).items() if w.outcome == "acked")


def test_views_lost_everywhere_without_a_rollback_fail_even_the_async_design(copy, capsys):
    run = copy()
    event_id = _acked(run)
    for side in ("east", "west"):  # gone from every log (reads too), and no rejoin recorded discarding it
        with closing(sqlite3.connect(run / "data" / f"views-{side}.sqlite3")) as conn, conn:
            conn.execute("DELETE FROM events WHERE event_id = ?", (event_id,))
            aggregates.rebuild(conn)
    code, found, _ = audit(run, capsys)
    assert code == 1 and found["lost_acked_everywhere"] == found["lost_everywhere_unrolled"] == 1
    counter, everywhere, earnings = found["reasons"]
    assert counter.startswith(
        "data: counter check: videos with fewer views than acknowledged (1 in views-east, "
        "1 in views-west); the async design may lose only the in-flight views"
    )
    assert everywhere.startswith("data: 1 acknowledged views are gone from every data center without a rollback")
    assert "earnings statements made after reconciliation do not match" in earnings  # they counted the lost view


def test_auth_replicas_that_differ_fail_the_audit(copy, capsys):
    run = copy()
    with closing(sqlite3.connect(run / "data" / "auth-west.sqlite3")) as conn, conn:
        conn.execute("DELETE FROM users WHERE rowid = (SELECT MIN(rowid) FROM users)")
    code, found, _ = audit(run, capsys)
    assert code == 1 and found["users_equal"] is False
    assert found["reasons"] == ["data: the auth replicas hold different users (audit.json)"]


def test_an_earnings_statement_that_does_not_match_the_views_fails_the_audit(copy, capsys):
    run = copy()
    with closing(sqlite3.connect(run / "data" / "earnings-west.sqlite3")) as conn, conn:
        conn.execute("UPDATE statements SET views = views + 1 WHERE rowid = (SELECT MIN(rowid) FROM statements)")
    code, found, _ = audit(run, capsys)
    assert code == 1 and found["earnings_mismatched"] == 1
    assert found["reasons"][0].startswith("data: 1 of ")


def test_a_borrowed_run_whose_journal_does_not_say_where_the_stack_is_fails_naming_the_field(copy, capsys):
    run = copy()
    with (run / "journal.jsonl").open("a") as journal:
        journal.write(json.dumps({"t": 1.0, "event": EventName.BORROWED}) + "\n")
    code, found, _ = audit(run, capsys)
    assert code == 1 and "'borrowed' event has no field 'stack_dir'" in found["reasons"][0]


def test_missing_evidence_joins_the_verdict_of_the_run_it_audits(copy):
    """What the engine does after every run (chaos/audit/engine.py): an audit that could not be done is a reason
    of the run's verdict, not a yellow note beside a run that held."""
    run = copy()
    (run / "data" / "views-west.sqlite3").unlink()
    console = Console(record=True, width=200)
    reasons = audit_after_run(run, console)
    assert len(reasons) == 1 and reasons[0].startswith("audit: missing evidence: ")
    assert "views-west.sqlite3 is missing" in reasons[0] and "views-west.sqlite3" in console.export_text()
    assert json.loads((run / "audit.json").read_text())["complete"] is False
