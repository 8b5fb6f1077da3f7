"""The one reader of requests.csv: typed rows, all at once or as they come, a torn last line never read."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.records import REQUEST_COLUMNS, CsvRecorder, request_row
from loadtest.requests_reader import RequestRow, RequestsReader, read_all
from services.common.errors import ConfigError


def test_rows_are_typed_as_the_recorder_wrote_them(tmp_path: Path):
    recorder = CsvRecorder(tmp_path / "requests.csv", REQUEST_COLUMNS)
    recorder.write(
        request_row(
            t=1.5,
            user="viewer-0001",
            dc="dc-east",
            action="feed",
            ok=1,
            status=200,
            latency_ms=250.0,
            tries=2,
            attempts=3,
            calls=1,
            zero_view_displays=4,
        )
    )
    recorder.write(request_row(t=2.0, user="creator-001", dc="dc-west", action="login", status=503, error="HTTP 503"))
    recorder.close()
    feed, login = read_all(tmp_path / "requests.csv")
    assert feed == RequestRow(
        t=1.5,
        dc="dc-east",
        action="feed",
        ok=True,
        latency_ms=250.0,
        user="viewer-0001",
        status=200,
        tries=2,
        attempts=3,
        calls=1,
        counts={"zero_view_displays": 4},
    )
    assert feed.finished == 1.75 and feed.symptom("zero_view_displays") == 4 and feed.symptom("stale_views") == 0
    assert not login.ok and login.error == "HTTP 503" and login.symptom("failed_logins") == 1
    assert feed.symptom("failed_logins") == 0  # a symptom belongs to its action's requests


def test_new_rows_only_and_a_row_being_written_waits_for_its_newline(tmp_path: Path):
    path = tmp_path / "requests.csv"
    reader = RequestsReader(path)
    assert reader.read_new() == []  # no file yet: the load has not started
    path.write_text("t,user,dc,action,ok,latency_ms\n1,u1,dc-east,feed,1,5\n2,u2,dc-ea")  # the writer is mid-row
    assert [r.user for r in reader.read_new()] == ["u1"]
    with path.open("a") as f:
        f.write("st,feed,0,7\n3,u3,dc-west,view,1,9\n")
    assert [(r.user, r.dc) for r in reader.read_new()] == [("u2", "dc-east"), ("u3", "dc-west")]
    assert reader.read_new() == []


def test_a_run_cut_mid_row_is_read_without_its_torn_last_row(tmp_path: Path):
    path = tmp_path / "requests.csv"
    path.write_text("t,dc,action,ok,latency_ms\n1,dc-east,feed,1,5\n2,dc-east,feed,1,1")  # locust was killed
    assert [r.t for r in read_all(path)] == [1.0]


def test_columns_missing_from_an_older_file_read_as_their_defaults(tmp_path: Path):
    path = tmp_path / "requests.csv"
    path.write_text("t,dc,action,ok,latency_ms,zero_views\n1,dc-east,feed,0,5,3\n")  # before the registry's names
    (row,) = read_all(path)
    assert (row.status, row.tries, row.attempts, row.counts, row.user) == (0, 1, 0, {}, "")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("t,user\n1,u\n", "missing column(s) dc, action, ok, latency_ms"),
        ("t,dc,action,ok,latency_ms\n1,dc-east,feed,1,5\nsoon,dc-east,feed,1,5\n", "line 3: column 't': 'soon'"),
        (
            "t,dc,action,ok,latency_ms\n1,dc-east,feed,1,inf\n",
            "line 2: column 'latency_ms': 'inf' is not a finite number",
        ),
        ("t,dc,action,ok,latency_ms\n1,dc-east,feed\n", "line 2: 3 fields, the header has 5"),
    ],
)
def test_a_bad_complete_row_names_the_file_and_line(tmp_path: Path, content: str, reason: str):
    path = tmp_path / "requests.csv"
    path.write_text(content)
    with pytest.raises(ConfigError) as err:
        read_all(path)
    assert err.value.source == str(path) and reason in err.value.reason


def test_a_bad_row_is_named_again_not_skipped_by_a_live_reader(tmp_path: Path):
    path = tmp_path / "requests.csv"
    path.write_text("t,dc,action,ok,latency_ms\nsoon,dc-east,feed,1,5\n")
    reader = RequestsReader(path)
    for _ in range(2):
        with pytest.raises(ConfigError, match="line 2"):
            reader.read_new()


def test_a_missing_file_is_an_error_once_the_run_is_over(tmp_path: Path):
    with pytest.raises(ConfigError, match="requests.csv: not found"):
        read_all(tmp_path / "requests.csv")
