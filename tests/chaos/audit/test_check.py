"""The audit on run directories built by hand: each finding appears when (and only when) it happened."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos.audit.check import audit_run
from chaos.audit.errors import EvidenceError
from chaos.cli import main
from chaos.journal import Journal
from chaos.topology import parse_topology
from loadtest.records import UPLOAD_COLUMNS, WRITE_COLUMNS, CsvRecorder
from services.common.db import Database
from services.earnings.app import SCHEMA as EARNINGS_SCHEMA
from services.recommender.catalog import SCHEMA as CATALOG_SCHEMA
from services.recommender.catalog import Catalog
from services.views.app import SCHEMA as VIEWS_SCHEMA
from services.views.app import ViewLog

T0 = 1_800_000_000.0
VIDEO = "video-0001"


def topology() -> dict:
    def dc(side: str, other: str) -> dict:
        return {
            "instances": {
                f"views-{side}": {"service": "views", "port": 0, "depends_on": {"views": [f"views-{other}"]}},
                f"recommender-{side}": {
                    "service": "recommender",
                    "port": 0,
                    "depends_on": {"views": [f"views-{side}"], "recommender": [f"recommender-{other}"]},
                },
                f"earnings-{side}": {
                    "service": "earnings",
                    "port": 0,
                    "depends_on": {"views": [f"views-{side}"], "recommender": [f"recommender-{side}"]},
                },
            }
        }

    return {"name": "two", "data_centers": {"dc-east": dc("east", "west"), "dc-west": dc("west", "east")}}


def fragile() -> dict:
    """One views log (dc-east); each data center's catalog keeps what it took, replicating nothing."""

    def dc(side: str) -> dict:
        return {f"recommender-{side}": {"service": "recommender", "port": 0, "depends_on": {"views": ["views-east"]}}}

    return {
        "name": "fragile",
        "data_centers": {
            "dc-east": {"instances": {"views-east": {"service": "views", "port": 0}, **dc("east")}},
            "dc-west": {"instances": dc("west")},
        },
    }


class RunDir:
    """A finished run's directory: topology, profile, ledger and each instance's database."""

    def __init__(self, root: Path, design: str = "converge", shape: dict | None = None) -> None:
        self.path = root
        (root / "data").mkdir(parents=True)
        shape = shape or topology()
        (root / "topology.yaml").write_text(parse_topology(shape, "test").model_dump_json())
        (root / "profile.yaml").write_text(f"name: p\nreplication: {design}\n")
        instances = [name for dc in shape["data_centers"].values() for name in dc["instances"]]
        self.logs = {
            name.removeprefix("views-"): ViewLog(Database(root / "data" / f"{name}.sqlite3", VIEWS_SCHEMA))
            for name in instances
            if name.startswith("views-")
        }
        for log in self.logs.values():
            log.seed(42)
        self.writes = CsvRecorder(root / "writes.csv", WRITE_COLUMNS)
        self.uploads = CsvRecorder(root / "uploads.csv", UPLOAD_COLUMNS)
        self.journal = Journal(root)
        self.journal.record("start")
        self.catalogs = {}  # every replica the topology names left its database
        for name in instances:
            if name.startswith("recommender-"):
                self.catalogs[name] = Catalog(Database(root / "data" / f"{name}.sqlite3", CATALOG_SCHEMA), 42)
            elif name.startswith("earnings-"):
                Database(root / "data" / f"{name}.sqlite3", EARNINGS_SCHEMA)

    def write(self, event_id: str, outcome: str, stored: dict[str, float], video: str = VIDEO) -> None:
        """A view the ledger records with ``outcome``, present in the logs of ``stored`` (side -> when)."""
        self.writes.write(
            {
                "event_id": event_id,
                "user": "viewer-0001",
                "dc": "dc-east",
                "video_id": video,
                "t_sent": T0,
                "t_done": T0,
                "outcome": outcome,
                "status": 200,
            }
        )
        for side, t in stored.items():
            with self.logs[side].db.transaction() as conn:
                conn.execute(
                    "INSERT INTO events (event_id, video_id, user_id, t, origin, stored_t) "
                    "VALUES (?, ?, 'viewer-0001', ?, 'local', ?)",
                    (event_id, video, t, t),
                )

    def audit(self):
        self.writes.close()
        self.uploads.close()
        return audit_run(self.path)


def test_every_acknowledged_view_everywhere_is_a_clean_audit(tmp_path):
    run = RunDir(tmp_path)
    run.write("a1", "acked", {"east": T0, "west": T0 + 0.5})
    run.write("a2", "acked", {"east": T0 + 1, "west": T0 + 1.2})
    run.write("u1", "unknown", {"west": T0 + 2, "east": T0 + 2.1})  # applied: inside [acked, acked + unknown]
    run.write("u2", "unknown", {})  # not applied: inside too
    run.write("f1", "failed", {})
    audit = run.audit()
    assert audit.reasons == [] and audit.writes == {"acked": 2, "unknown": 2, "failed": 1}
    for dc in audit.views:
        assert (dc.acked_present, dc.lost_acked, dc.double_counted, dc.below_range, dc.above_range) == (2, 0, 0, 0, 0)
        assert dc.unknown_applied == 1 and dc.failed_applied == 0
    # three spans of disagreement (0.5 s, 0.2 s, 0.1 s), none overlapping
    assert audit.disagreed_s == pytest.approx(0.8) and audit.max_lag_s == pytest.approx(0.5)
    assert audit.disagree_at_end == 0 and audit.videos_differing_at_end == 0


def test_a_lost_acknowledged_view_fails_the_design_that_promised_none(tmp_path):
    run = RunDir(tmp_path, design="converge")
    run.write("a1", "acked", {"east": T0, "west": T0})
    run.write("a2", "acked", {"east": T0 + 1})  # never reached west
    (tmp_path / "journal.jsonl").write_text(json.dumps({"t": T0 + 10, "event": "end"}) + "\n")
    audit = run.audit()
    east, west = audit.views
    assert (east.lost_acked, west.lost_acked) == (0, 1) and west.below_range == 1 and west.lost_examples == ["a2"]
    assert audit.disagree_at_end == 1 and audit.videos_differing_at_end == 1
    assert audit.disagreed_s == pytest.approx(9.0)  # from its arrival in east to the end of the run
    assert "promised no loss" in audit.reasons[0] and "counter check" in audit.reasons[1] and len(audit.reasons) == 2


def test_the_async_design_reports_its_rolled_back_loss_without_failing_on_it(tmp_path):
    run = RunDir(tmp_path, design="async")
    run.write("a1", "acked", {"east": T0})
    run.logs["east"].discard(["a1"], "test")  # in flight when east went dark: its rejoin discarded it, on record
    audit = run.audit()
    assert audit.lost_acked_everywhere == 1 and audit.lost_everywhere_unrolled == 0 and not audit.promises_no_loss
    assert [(v.below_range, v.below_unexplained) for v in audit.views] == [(1, 0), (1, 0)]
    assert audit.reasons == []


def test_the_async_design_fails_on_a_loss_no_rollback_explains(tmp_path):
    run = RunDir(tmp_path, design="async")
    run.write("a1", "acked", {"east": T0})
    run.logs["east"].discard(["a1"], "test")  # allowed
    run.write("a2", "acked", {})  # acknowledged, then in no log and in no rollback record: lost for no reason
    audit = run.audit()
    assert (audit.lost_acked_everywhere, audit.lost_everywhere_unrolled) == (2, 1)
    assert [v.below_unexplained for v in audit.views] == [1, 1]
    counter, everywhere = audit.reasons
    assert "counter check" in counter and "1 in views-east, 1 in views-west" in counter
    assert everywhere.startswith("data: 1 acknowledged views are gone from every data center without a rollback")
    assert "1 were, allowed" in everywhere


def test_double_counts_are_caught_in_the_log_and_in_what_reads_answer(tmp_path):
    run = RunDir(tmp_path, design="async")
    run.write("a1", "acked", {"east": T0, "west": T0})
    run.write("x1", "failed", {"east": T0})  # reported failed, yet applied: one view too many
    with run.logs["west"].db.transaction() as conn:  # reads answering one more than the log holds
        conn.execute("UPDATE view_counts SET n = n + 1 WHERE video_id = ?", (VIDEO,))
    audit = run.audit()
    east, west = audit.views
    assert (east.above_range, east.double_counted, east.failed_applied) == (1, 1, 1)
    assert (west.above_range, west.double_counted) == (0, 1)
    assert any("double counts" in r for r in audit.reasons)  # whatever the design


def test_uploads_lost_and_earnings_that_do_not_match_the_views(tmp_path):
    run = RunDir(tmp_path)
    run.write("a1", "acked", {"east": T0, "west": T0})
    catalogs = {name.removeprefix("recommender-"): catalog for name, catalog in run.catalogs.items()}
    upload = catalogs["east"].add("clip", "creator-001", [])
    run.uploads.write(
        {
            "video_id": upload.video_id,
            "title": "clip",
            "user": "creator-001",
            "dc": "dc-east",
            "t_sent": T0,
            "t_done": T0,
            "outcome": "acked",
            "status": 201,
        }
    )
    creator = catalogs["east"].entries[VIDEO].creator_id
    right = sum(
        run.logs["east"].counts([v for v, e in catalogs["east"].entries.items() if e.creator_id == creator]).values()
    )
    for side, views in (("east", right), ("west", right - 1)):
        db = Database(tmp_path / "data" / f"earnings-{side}.sqlite3", EARNINGS_SCHEMA)
        with db.transaction() as conn:  # computed after every log last changed: they must match
            conn.execute("INSERT INTO statements VALUES (?, ?, 0, ?)", (creator, views, 4_000_000_000.0))
    audit = run.audit()
    lost = {u.instance: u.lost_acked for u in audit.uploads_by_dc}
    assert lost == {"recommender-east": 0, "recommender-west": 1}
    assert (audit.earnings_checked, audit.earnings_mismatched) == (2, 1)
    assert any("1 acknowledged uploads" in r for r in audit.reasons)
    assert "data: 1 of 2 earnings statements made after reconciliation do not match" in audit.reasons[-1]


def test_a_single_copy_promises_no_loss_and_unreplicated_catalogs_keep_only_their_own(tmp_path):
    run = RunDir(tmp_path, design="async", shape=fragile())
    run.write("a1", "acked", {"east": T0})
    run.write("a2", "acked", {})  # committed before it was acknowledged, yet not in the only log
    upload = run.catalogs["recommender-west"].add("clip", "creator-001", [])  # west's catalog took it, east never will
    run.uploads.write(
        {
            "video_id": upload.video_id,
            "title": "clip",
            "user": "creator-001",
            "dc": "dc-west",
            "t_sent": T0,
            "t_done": T0,
            "outcome": "acked",
            "status": 201,
        }
    )
    audit = run.audit()
    assert audit.design == "single copy" and audit.promises_no_loss and audit.profiles == ["p"]
    assert [u.lost_acked for u in audit.uploads_by_dc] == [0, 0]
    assert audit.reasons[0].startswith(
        "data: the single copy design promised no loss, yet 1 acknowledged views and 0 acknowledged uploads are missing"
    )


def test_rolled_back_views_are_reported_from_the_rollback_file(tmp_path):
    run = RunDir(tmp_path, design="async")
    run.write("a1", "acked", {"east": T0})
    run.logs["east"].discard(["a1"], "test")
    audit = run.audit()
    assert [v.rolled_back for v in audit.views] == [1, 0] and audit.lost_acked_everywhere == 1
    assert run.logs["east"].counts([VIDEO]) == run.logs["west"].counts([VIDEO])  # aggregates follow the log


def test_the_command_writes_audit_json_and_exits_with_the_verdict(tmp_path, capsys):
    run = RunDir(tmp_path)
    run.write("a1", "acked", {"east": T0})
    run.writes.close()
    run.uploads.close()
    assert main(["audit", str(tmp_path)]) == 1
    assert json.loads((tmp_path / "audit.json").read_text())["views"][1]["lost_acked"] == 1
    assert "Data audit" in capsys.readouterr().out


def test_a_directory_that_is_not_a_run_is_refused_with_exit_2(tmp_path, capsys):
    assert main(["audit", str(tmp_path)]) == 2
    assert "not a finished run directory" in capsys.readouterr().err


def test_every_missing_or_unreadable_piece_of_evidence_is_named_and_fails_the_audit(tmp_path, capsys):
    run = RunDir(tmp_path)
    run.write("a1", "acked", {"east": T0, "west": T0})
    run.writes.close()
    run.uploads.close()
    (tmp_path / "data" / "views-west.sqlite3").unlink()
    (tmp_path / "uploads.csv").unlink()
    (tmp_path / "profile.yaml").write_text("name: p\nreplication: sometimes\n")
    with pytest.raises(EvidenceError) as caught:
        audit_run(tmp_path)
    assert len(caught.value.problems) == 3  # all named at once, not the first only
    assert main(["audit", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    saved = json.loads((tmp_path / "audit.json").read_text())
    assert saved["complete"] is False and "lost_acked_everywhere" not in saved  # nothing reads as measured
    profile, database, ledger = saved["reasons"]
    assert "views-west.sqlite3 is missing" in database and "views replica views-west of dc-west" in database
    assert "profile.yaml" in profile and "replication" in profile
    assert "uploads.csv is missing" in ledger
    assert "views-west.sqlite3" in out and "uploads.csv" in out


def test_a_ledger_row_of_no_known_outcome_names_the_file_and_line(tmp_path):
    run = RunDir(tmp_path)
    run.writes.close()
    run.uploads.close()
    (tmp_path / "writes.csv").write_text(",".join(WRITE_COLUMNS) + "\ne1,u,dc-east,v,0,0,maybe,0\n")
    with pytest.raises(EvidenceError, match=r"writes.csv:2: outcome 'maybe'"):
        audit_run(tmp_path)
