"""The charts' numbers: per data center success and p99 in buckets, read incrementally from requests.csv."""

from __future__ import annotations

import os

from chaos.workshop.window import RequestWindow, current_run_dir

HEADER = "t,user,dc,action,ok,status,latency_ms\n"


def line(t: float, dc: str, ok: bool, latency_ms: float) -> str:
    return f"{t},u1,{dc},feed,{1 if ok else 0},{200 if ok else 503},{latency_ms}\n"


def test_buckets_per_data_center_with_gaps_where_nothing_finished(tmp_path):
    (tmp_path / "requests.csv").write_text(
        HEADER
        + "".join(
            [line(100 + i * 0.5, "dc-east", True, 10 * (i + 1)) for i in range(10)]  # all finish in [100, 105)
            + [line(100 + i, "dc-west", i % 2 == 0, 100) for i in range(4)]
        )
    )
    window = RequestWindow()
    window.follow(tmp_path)
    series = window.series(now=110.0, seconds=15, bucket_s=5)
    east, west = series["dc-east"], series["dc-west"]
    assert [b["requests"] for b in east] == [0, 10, 0] and east[1]["success"] == 1.0 and east[1]["p99_ms"] == 100.0
    assert east[0]["success"] is None and east[2]["p99_ms"] is None  # a gap, not a made-up 0
    assert west[1]["success"] == 0.5


def test_only_new_bytes_are_read_and_a_half_written_line_waits(tmp_path):
    path = tmp_path / "requests.csv"
    path.write_text(HEADER + line(100, "dc-east", True, 5) + "101,u1,dc-ea")  # the writer is mid-line
    window = RequestWindow()
    window.follow(tmp_path)
    assert sum(b["requests"] for b in window.series(110, 10, 5)["dc-east"]) == 1
    with path.open("a") as f:
        f.write("st,feed,0,503,7\n")
    window.follow(tmp_path)
    buckets = window.series(110, 10, 5)["dc-east"]
    assert sum(b["requests"] for b in buckets) == 2 and buckets[0]["success"] == 0.5


def test_the_current_run_is_the_newest_with_users(tmp_path):
    assert current_run_dir(tmp_path) is None
    for name, mtime in (("old-run", 1000), ("new-run", 2000)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "requests.csv").write_text(HEADER)
        os.utime(tmp_path / name / "requests.csv", (mtime, mtime))
    (tmp_path / "up-fragile").mkdir()  # the supervisor's own folder has no users
    assert current_run_dir(tmp_path) == tmp_path / "new-run"
