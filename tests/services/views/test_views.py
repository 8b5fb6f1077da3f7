from __future__ import annotations

import sqlite3

from fakes.stack import client_for

from services.common.seed import seed_view_events


def test_a_retried_event_never_counts_twice(tmp_path):
    with client_for("views", tmp_path) as client:
        before = client.get("/videos/video-0001/views").json()["views"]
        event = {"event_id": "evt-1", "video_id": "video-0001", "user_id": "viewer-0001"}
        assert client.post("/views", json=event).json()["counted"] is True
        assert client.post("/views", json=event).json()["counted"] is False
        assert client.get("/videos/video-0001/views").json()["views"] == before + 1


def test_counts_are_derived_from_the_seeded_log(tmp_path):
    expected = sum(1 for _, vid, _, _ in seed_view_events() if vid == "video-0005")
    with client_for("views", tmp_path) as client:
        answer = client.post("/views/counts", json={"video_ids": ["video-0005", "no-such-video"]}).json()
        assert answer == {"counts": {"video-0005": expected, "no-such-video": 0}, "complete": True}  # no peer to miss


def test_history_is_most_recent_first_and_trending_ranks_by_recent_views(tmp_path):
    with client_for("views", tmp_path) as client:
        for n, video in enumerate(["video-0010", "video-0020", "video-0010"]):
            client.post("/views", json={"event_id": f"h{n}", "video_id": video, "user_id": "newcomer"})
        assert client.get("/users/newcomer/history").json()["video_ids"] == ["video-0010", "video-0020"]
        trending = client.get("/trending", params={"limit": 5}).json()["videos"]
        assert len(trending) == 5
        assert [v["views"] for v in trending] == sorted((v["views"] for v in trending), reverse=True)


def test_data_survives_a_restart_of_the_instance(tmp_path):
    with client_for("views", tmp_path) as client:
        client.post("/views", json={"event_id": "durable", "video_id": "video-0003", "user_id": "u"})
        count = client.get("/videos/video-0003/views").json()["views"]
    with client_for("views", tmp_path) as client:  # same data dir: the same SQLite file
        assert client.get("/videos/video-0003/views").json()["views"] == count


def test_bad_input_is_refused_with_a_reason(tmp_path):
    with client_for("views", tmp_path) as client:
        assert client.post("/views", json={"event_id": "", "video_id": "v", "user_id": "u"}).status_code == 422
        assert client.post("/views", json={"event_id": "e", "video_id": "v/../x", "user_id": "u"}).status_code == 422
        too_many = {"video_ids": [f"v{i}" for i in range(201)]}
        answer = client.post("/views/counts", json=too_many)
        assert answer.status_code == 422
        assert answer.json()["detail"][0]["loc"] == ["body", "video_ids"]
        assert client.get("/trending", params={"limit": 0}).status_code == 422


def test_an_event_id_is_scoped_to_its_user_and_a_mismatched_replay_is_a_409(tmp_path):
    with client_for("views", tmp_path) as client:
        videos = {"video_ids": ["video-0001", "video-0002", "video-0003"]}
        before = client.post("/views/counts", json=videos).json()["counts"]
        mine = {"event_id": "evt-7", "video_id": "video-0001", "user_id": "viewer-0001"}
        theirs = {"event_id": "evt-7", "video_id": "video-0002", "user_id": "viewer-0002"}
        assert client.post("/views", json=mine).json()["counted"] is True
        assert client.post("/views", json=theirs).json()["counted"] is True  # another user's key: its own view
        assert client.post("/views", json=mine).json()["counted"] is False  # a retry: counted once
        reused = client.post("/views", json={**mine, "video_id": "video-0003"})
        assert reused.status_code == 409 and "video-0001" in reused.json()["detail"]
        after = client.post("/views/counts", json=videos).json()["counts"]
        assert after == {**before, "video-0001": before["video-0001"] + 1, "video-0002": before["video-0002"] + 1}
        assert client.get("/users/viewer-0001/history").json()["video_ids"][0] == "video-0001"


OLD_EVENTS = """
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    video_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    t REAL NOT NULL,
    origin TEXT NOT NULL DEFAULT 'local',
    stored_t REAL
);
"""


def test_a_log_made_with_global_event_ids_is_rebuilt_keeping_its_events_and_seqs(tmp_path):
    with sqlite3.connect(tmp_path / "views-test.sqlite3") as conn:  # the instance's file (fakes.stack)
        conn.executescript(OLD_EVENTS)
        conn.executemany(
            "INSERT INTO events (seq, event_id, video_id, user_id, t) VALUES (?, ?, 'video-0001', ?, 1)",
            [(1, "a", "viewer-0001"), (2, "b", "viewer-0002"), (9, "c", "viewer-0003")],
        )
        conn.execute("DELETE FROM events WHERE seq = 9")  # a discarded tail: its seq must never come back
    with client_for("views", tmp_path) as client:
        assert client.get("/videos/video-0001/views").json()["views"] == 2
        assert (
            client.post("/views", json={"event_id": "a", "video_id": "video-0002", "user_id": "viewer-0002"}).json()[
                "counted"
            ]
            is True
        )
        assert (
            client.post(
                "/views", json={"event_id": "a", "video_id": "video-0002", "user_id": "viewer-0001"}
            ).status_code
            == 409
        )
        assert client.get("/videos/video-0002/views").json()["views"] == 1  # the trigger came back with the table
    with sqlite3.connect(tmp_path / "views-test.sqlite3") as conn:
        seqs = [row[0] for row in conn.execute("SELECT seq FROM events ORDER BY seq")]
        indexes = {row[1] for row in conn.execute("PRAGMA index_list(events)")}
    assert seqs[:2] == [1, 2] and seqs[2] > 9
    assert {"events_by_event_id", "events_by_video", "events_by_user", "events_by_origin"} <= indexes


def test_a_view_written_shows_in_the_instances_write_latency_on_metrics(tmp_path):
    # what an SRE reads to tell a storage stall from a slow service: the instance's own /metrics
    def writes(client) -> float:
        for line in client.get("/metrics").text.splitlines():
            if line.startswith("blackout_db_write_duration_seconds_count"):
                return float(line.split()[-1])
        raise AssertionError("no blackout_db_write_duration_seconds on /metrics")

    with client_for("views", tmp_path) as client:
        before = writes(client)
        event = {"event_id": "timed", "video_id": "video-0001", "user_id": "viewer-0001"}
        assert client.post("/views", json=event).status_code == 200
        assert writes(client) == before + 1
