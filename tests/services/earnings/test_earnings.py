from __future__ import annotations

import json

import httpx
from fakes.stack import client_for, swap_profile

from services.common.policy import FallbackPolicy

DEPS = {"views": ["http://views.test"], "recommender": ["http://recommender.test"]}


def world(views_up: dict):
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "recommender.test":
            return httpx.Response(200, json={"creator_id": "c", "video_ids": ["v1", "v2"]})
        if not views_up["on"]:
            return httpx.Response(503)
        ids = json.loads(request.content)["video_ids"]
        return httpx.Response(200, json={"counts": {vid: 1000 for vid in ids}})

    return handler


def test_earnings_are_computed_from_the_creators_views(tmp_path):
    with client_for("earnings", tmp_path, world({"on": True}), DEPS) as client:
        body = client.get("/creators/creator-001/earnings").json()
        assert body["views"] == 2000
        assert body["earnings_cents"] == 800
        assert body["status"] == "ok"


def test_naive_earnings_fail_when_views_cannot_be_read(tmp_path):
    with client_for("earnings", tmp_path, world({"on": False}), DEPS, profile="naive") as client:
        answer = client.get("/creators/creator-001/earnings")
        assert answer.status_code == 502
        assert "views" in answer.json()["detail"]


def test_stale_policy_serves_the_last_statement_marked_stale(tmp_path):
    views_up = {"on": True}
    with client_for("earnings", tmp_path, world(views_up), DEPS) as client:
        swap_profile(client, fallbacks=FallbackPolicy(earnings="stale"))
        fresh = client.get("/creators/creator-001/earnings").json()
        views_up["on"] = False
        stale = client.get("/creators/creator-001/earnings").json()
        assert stale["status"] == "stale"
        assert stale["earnings_cents"] == fresh["earnings_cents"]
        assert client.get("/creators/creator-002/earnings").status_code == 502  # nothing known: no invention
