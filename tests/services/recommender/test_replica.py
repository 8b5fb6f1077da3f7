"""The catalog's replication routes: received uploads join the catalog once; bad batches get a 422."""

from __future__ import annotations

from fakes.stack import client_for

UPLOAD = {"video_id": "up-west1", "title": "a clip", "creator_id": "creator-002", "tags": ["dance"], "created_at": 5.0}


def test_received_uploads_join_the_catalog_once(tmp_path):
    with client_for("recommender", tmp_path, deps={"views": ["http://views.test"]}) as client:
        assert client.app.state.shipper is None  # no recommender peer: nothing to ship to
        batch = {"events": [UPLOAD], "source": "recommender-west"}
        assert client.post("/replication/videos", json=batch).json() == {"applied": 1}
        assert client.post("/replication/videos", json=batch).json() == {"applied": 0}  # a resent batch
        assert client.get("/videos/up-west1").json()["creator_id"] == "creator-002"
        assert client.get("/creators/creator-002/videos").json()["video_ids"].count("up-west1") == 1
        known = client.post("/replication/videos/known", json={"ids": ["up-west1", "up-nowhere"]}).json()
        assert known == {"known": ["up-west1"]}
        assert client.get("/replication/status").json() == {"peers": {}, "rewound": {}}


def test_a_bad_upload_batch_is_refused_naming_the_field(tmp_path):
    with client_for("recommender", tmp_path, deps={"views": ["http://views.test"]}) as client:
        bad = client.post("/replication/videos", json={"events": [{**UPLOAD, "video_id": "a/b"}]})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "events", 0, "video_id"]
        assert client.post("/replication/videos", json={"events": [{**UPLOAD, "created_at": -1}]}).status_code == 422
        assert client.post("/replication/videos", json={"events": [UPLOAD] * 501}).status_code == 422
        assert client.post("/replication/videos/known", json={"ids": "x"}).status_code == 422


def test_a_recommender_with_a_recommender_peer_ships_its_uploads(tmp_path):
    deps = {"views": ["http://views.test"], "recommender": ["http://peer.test/"]}
    with client_for("recommender", tmp_path, deps=deps) as client:
        shipper = client.app.state.shipper
        assert list(shipper.peers) == ["http://peer.test"] and shipper.path == "/replication/videos"
