from __future__ import annotations

import httpx
from fakes.stack import client_for, swap_profile

from services.common.perimeter import USER_HEADER
from services.common.policy import FallbackPolicy
from services.common.seed import generic_feed
from services.views.api import HISTORY, TRENDING

VIEWS = {"views": ["http://views.test"]}


def healthy_views(request: httpx.Request) -> httpx.Response:
    if request.url.path.startswith(HISTORY.partition("{")[0]):
        return httpx.Response(200, json={"user_id": "u", "video_ids": ["video-0001", "video-0002"]})
    if request.url.path == TRENDING:
        return httpx.Response(
            200, json={"videos": [{"video_id": f"video-{i:04d}", "views": 50 - i} for i in range(1, 41)]}
        )
    return httpx.Response(404)


def test_feed_is_personalized_from_history_and_excludes_watched(tmp_path):
    with client_for("recommender", tmp_path, healthy_views, VIEWS) as client:
        items = client.get("/recommendations/viewer-0001", params={"limit": 10}).json()["items"]
        assert len(items) == 10
        assert {i["source"] for i in items} <= {"personalized", "trending"}
        assert any(i["source"] == "personalized" for i in items)
        assert not {"video-0001", "video-0002"} & {i["video_id"] for i in items}


def test_naive_fallback_is_generic_content(tmp_path):
    with client_for("recommender", tmp_path, None, VIEWS, profile="naive") as client:
        items = client.get("/recommendations/viewer-0001").json()["items"]
        assert [i["video_id"] for i in items] == [v.video_id for v in generic_feed()]
        assert {i["source"] for i in items} == {"generic"}


def test_ladder_falls_to_cached_then_trending_then_generic(tmp_path):
    views_up = {"on": True}

    def flaky(request: httpx.Request) -> httpx.Response:
        return healthy_views(request) if views_up["on"] else httpx.Response(503)

    with client_for("recommender", tmp_path, flaky, VIEWS) as client:
        swap_profile(client, fallbacks=FallbackPolicy(recommendations="ladder"))
        fresh = client.get("/recommendations/viewer-0001").json()["items"]
        views_up["on"] = False
        cached = client.get("/recommendations/viewer-0001").json()["items"]
        assert [i["video_id"] for i in cached] == [i["video_id"] for i in fresh]
        assert {i["source"] for i in cached} == {"cached"}
        other_user = client.get("/recommendations/viewer-0002").json()["items"]
        assert {i["source"] for i in other_user} == {"trending"}  # from the last trending list it read
    with client_for("recommender", tmp_path / "cold", None, VIEWS) as client:  # nothing ever read
        swap_profile(client, fallbacks=FallbackPolicy(recommendations="ladder"))
        assert {i["source"] for i in client.get("/recommendations/viewer-0001").json()["items"]} == {"generic"}


def test_upload_is_indexed_under_its_creator(tmp_path):
    with client_for("recommender", tmp_path, healthy_views, VIEWS) as client:
        # the creator is the user the gateway verified and forwards; a creator_id in the body is not read
        as_creator = {USER_HEADER: "creator-001"}
        created = client.post(
            "/videos",
            json={"title": "My first clip", "creator_id": "creator-002", "tags": ["music"]},
            headers=as_creator,
        )
        assert created.status_code == 201 and created.json()["creator_id"] == "creator-001"
        video_id = created.json()["video_id"]
        assert video_id in client.get("/creators/creator-001/videos").json()["video_ids"]
        assert client.get(f"/videos/{video_id}").json()["title"] == "My first clip"
        assert client.get("/videos/nope").status_code == 404
        assert client.post("/videos", json={"title": ""}, headers=as_creator).status_code == 422
        assert client.post("/videos", json={"title": "x", "tags": ["a"] * 6}, headers=as_creator).status_code == 422
        assert client.post("/videos", json={"title": "x"}).status_code == 400  # no verified user forwarded
