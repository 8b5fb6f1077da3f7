from __future__ import annotations

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
