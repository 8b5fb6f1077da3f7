"""loadtest.records: symptom detection, validation, config parsing and CSV writing."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from loadtest import records as r
from loadtest.requests_reader import read_all


def item(vid: str, views: int | None = 0, status: str = "ok", source: str = "personalized") -> dict:
    return {
        "video_id": vid,
        "title": vid,
        "creator_id": "creator-001",
        "source": source,
        "views": views,
        "views_status": status,
    }


# --- symptoms ---------------------------------------------------------------------------------


def test_count_zero_views_only_when_known_positive() -> None:
    items = [item("v1", 0), item("v2", 0), item("v3", 5), item("v4", None, "unavailable")]
    assert r.count_zero_views(items, {"v1": 3, "v2": 0, "v3": 9, "v4": 2}) == 1
    assert r.count_zero_views(items, {}) == 0


def test_view_knowledge_from_feeds_and_acks() -> None:
    k = r.ViewKnowledge()
    assert k.zero_views([item("v1", 7), item("v2", 0)]) == 0  # learned, nothing known before
    assert k.known("v1") == 7
    k.observe_feed([item("v1", 99, "stale")])  # stale counts are not evidence
    assert k.known("v1") == 7
    k.observe_ack("v2")
    assert k.known("v2") == 1
    assert k.zero_views([item("v1", 0), item("v2", 0), item("v3", 0)]) == 2
    assert k.known("v1") == 7  # a later 0 never lowers the max


def test_a_feed_is_judged_by_what_was_known_when_it_was_asked() -> None:
    now = [10.0]
    k = r.ViewKnowledge(clock=lambda: now[0])
    asked = k.clock()  # a feed leaves
    now[0] = 10.2
    k.observe_ack("v1")  # another user's first view of v1 is acknowledged while the feed is on its way
    now[0] = 10.3
    assert k.zero_views([item("v1", 0)], asked_at=asked) == 0  # concurrent with the read: either answer is right
    assert k.zero_views([item("v1", 0)], asked_at=k.clock()) == 1  # asked after the ack: a 0 is wrong
    assert k.zero_views([item("v1", 0)]) == 1  # no time given: everything known so far


def test_stale_generic_repeated() -> None:
    items = [item("a", 1, "stale"), item("b", None, "unavailable"), item("c", 2, "ok")]
    assert r.count_stale_views(items) == 2
    assert r.is_generic_feed([item("a", source="generic"), item("b", source="generic")])
    assert not r.is_generic_feed([item("a", source="generic"), item("b", source="trending")])
    assert not r.is_generic_feed([])
    assert r.is_repeated_feed(["a", "b"], ["a", "b"])
    assert not r.is_repeated_feed(["a", "b"], ["b", "a"])
    assert not r.is_repeated_feed(None, ["a"])


def test_earnings_missing() -> None:
    assert r.earnings_missing(False, None)
    assert r.earnings_missing(True, {"creator_id": "c", "views": 1, "earnings_cents": None, "status": "stale"})
    assert not r.earnings_missing(True, {"creator_id": "c", "views": 1, "earnings_cents": 0, "status": "ok"})


def test_validation() -> None:
    assert r.validate_login({"token": "t", "user_id": "u", "role": "viewer", "expires_at": 1.0}) is None
    assert "role" in r.validate_login({"token": "t", "user_id": "u", "role": "admin", "expires_at": 1.0})
    assert r.validate_feed({"user_id": "u", "items": [item("a")]}) is None
    assert "items" in r.validate_feed({"user_id": "u"})
    assert "item 0" in r.validate_feed({"user_id": "u", "items": [{"video_id": "a"}]})
    assert "views" in r.validate_feed({"user_id": "u", "items": [item("a", "3")]})
    assert r.validate_feed(["not", "a", "dict"]) == "body is not a JSON object"
    assert r.validate_view({"event_id": "e", "video_id": "v", "counted": True}) is None
    assert r.validate_upload({"video_id": "v"}) is not None
    assert r.validate_earnings({"creator_id": "c", "views": None, "earnings_cents": None, "status": "x"}) is None


def test_classify_write_and_headers() -> None:
    assert [r.classify_write(s) for s in (200, 201, 404, 503, 0, 302, 502, 504)] == [
        "acked",
        "acked",
        "failed",
        "failed",
        "unknown",
        "unknown",
        "unknown",
        "unknown",
    ]
    assert r.parse_count_header("3") == 3
    assert r.parse_count_header(None) == 0
    assert r.parse_count_header("x") == 0
    assert r.parse_count_header("-2") == 0


def test_a_write_tried_several_times_failed_only_if_every_try_surely_did_nothing() -> None:
    assert r.classify_tries([0, 200]) == "acked"  # the same event_id: applied once, acknowledged
    assert r.classify_tries([503, 503]) == "failed"
    assert r.classify_tries([0, 503]) == "unknown"  # the first try may have been applied before it timed out
    assert r.classify_tries([502, 404]) == "unknown"
    assert r.classify_tries([504]) == "unknown"
    with pytest.raises(ValueError):
        r.classify_tries([])


# --- configuration ----------------------------------------------------------------------------


def test_parse_gateways() -> None:
    assert r.parse_gateways("dc-east=http://127.0.0.1:8000, dc-west=http://127.0.0.1:9000/") == [
        ("dc-east", "http://127.0.0.1:8000"),
        ("dc-west", "http://127.0.0.1:9000"),
    ]
    for bad in (None, "", "dc-east", "dc-east=", "=http://x", "dc-east=ftp://x", "a=http://x,a=http://y"):
        with pytest.raises(ValueError):
            r.parse_gateways(bad)


# --- CSV ----------------------------------------------------------------------------------------


def test_csv_recorder_header_once_and_flush(tmp_path: Path) -> None:
    path = tmp_path / "run" / "requests.csv"
    rec = r.CsvRecorder(path, r.REQUEST_COLUMNS)
    rec.write(
        r.request_row(
            t=1.5,
            user="viewer-0001",
            dc="dc-east",
            action="feed",
            ok=True,
            status=200,
            latency_ms=12.25,
            attempts=2,
            calls=1,
            zero_view_displays=1,
            error="",
        )
    )
    # flushed at once: visible to another reader before close
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(r.REQUEST_COLUMNS)
    assert lines[1] == "1.5,viewer-0001,dc-east,feed,1,200,12.25,1,2,1,1,0,0,0,0,"
    rec.close()
    again = r.CsvRecorder(path, r.REQUEST_COLUMNS)  # a second process / reopen appends, no new header
    again.write(r.request_row(t=2.0, user="u", dc="dc-west", action="login", error="boom\nline two"))
    again.close()
    rows = list(csv.DictReader(open(path)))
    assert len(rows) == 2
    assert path.read_text().count("t,user,dc") == 1
    assert rows[1]["error"] == "boom line two" and rows[1]["ok"] == "0" and rows[1]["t"] == "2"


def test_csv_recorder_refuses_other_header_and_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "writes.csv"
    path.write_text("something,else\n")
    with pytest.raises(ValueError):
        r.CsvRecorder(path, r.WRITE_COLUMNS)
    rec = r.CsvRecorder(tmp_path / "w2.csv", r.WRITE_COLUMNS)
    with pytest.raises(ValueError):
        rec.write({"event_id": "e"})
    with pytest.raises(ValueError):
        r.request_row(t=1, user="u", dc="d", action="feed", bogus=1)
    rec.close()


def test_short_error() -> None:
    assert r.short_error("a\n  b") == "a b"
    assert len(r.short_error("x" * 1000)) == r.ERROR_MAX_CHARS


def _append_rows(path: str, writer: int, n: int) -> None:
    rec = r.CsvRecorder(path, r.REQUEST_COLUMNS)
    for i in range(n):
        rec.write(
            r.request_row(t=float(i), user=f"writer-{writer}", dc="dc-east", action="feed", error="x" * (i % 300))
        )  # rows of many sizes
    rec.close()


def test_csv_recorder_rows_from_concurrent_processes_stay_whole(tmp_path: Path) -> None:
    import multiprocessing

    path = tmp_path / "requests.csv"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_rows, args=(str(path), w, 400)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    assert path.read_text().count("t,user,dc") == 1
    rows = read_all(path)  # every row parses: none torn
    assert len(rows) == 1600
    for w in range(4):
        mine = [int(row.t) for row in rows if row.user == f"writer-{w}"]
        assert mine == list(range(400))  # each writer's rows whole and in its own order
