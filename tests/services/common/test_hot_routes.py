"""The fast path answers exactly as FastAPI's routes do, and leaves everything it should not take to them."""

from __future__ import annotations

import json

import httpx
import pytest
from fakes.stack import SECRET, client_for
from fastapi.testclient import TestClient

from services.common.hot_routes import HotRoutes
from services.common.metrics import HTTP_REQUESTS
from services.common.names import DEPENDENCIES
from services.common.tokens import issue_token

TOKEN, _ = issue_token("viewer-0002", "viewer", SECRET.encode(), 3600)
AUTH = {"Authorization": f"Bearer {TOKEN}"}
VIEWS_REQUESTS = [
    ("GET", "/trending", {"params": {"limit": 7}}),
    ("GET", "/trending", {}),
    ("GET", "/users/viewer-0002/history", {"params": {"limit": 5}}),
    ("POST", "/views/counts", {"json": {"video_ids": ["video-0001", "video-0002", "nothing-here"]}}),
    # what the fast path must leave to FastAPI: its validation answers them
    ("GET", "/trending", {"params": {"limit": 0}}),
    ("GET", "/trending", {"params": {"limit": "ten"}}),
    ("GET", "/users/bad id!/history", {}),
    ("POST", "/views/counts", {"json": {"video_ids": []}}),
    ("POST", "/views/counts", {"json": {"video_ids": ["ok", "not ok/"]}}),
    ("POST", "/views/counts", {"content": b"{not json", "headers": {"content-type": "application/json"}}),
    ("POST", "/views/counts", {"content": b"video_ids=1", "headers": {"content-type": "text/plain"}}),
]


def without_fast_path(client: TestClient) -> TestClient:
    kept = [m for m in client.app.user_middleware if m.cls is not HotRoutes]
    assert len(kept) == len(client.app.user_middleware) - 1
    client.app.user_middleware[:] = kept
    return client


def answers(client: TestClient) -> list[tuple[int, object]]:
    return [(r.status_code, r.json()) for r in (client.request(m, p, **kw) for m, p, kw in VIEWS_REQUESTS)]


def test_views_answers_are_the_same_with_and_without_the_fast_path(tmp_path):
    with (
        client_for("views", tmp_path / "fast") as fast,
        without_fast_path(client_for("views", tmp_path / "plain")) as plain,
    ):
        got, expected = answers(fast), answers(plain)
    assert got == expected
    assert [status for status, _ in got][:4] == [200] * 4 and all(status == 422 for status, _ in got[4:])
    assert got[3][1]["counts"]["video-0001"] > 0 and got[3][1]["counts"]["nothing-here"] == 0
    assert got[8][1]["detail"][0]["loc"][:2] == ["body", "video_ids"]  # the declined body was read again


def test_fast_answers_are_counted_under_their_route(tmp_path):
    served = HTTP_REQUESTS.labels("/users/{user_id}/history", "GET", "200")
    before = served._value.get()
    with client_for("views", tmp_path) as client:
        assert client.get("/users/viewer-0001/history").status_code == 200
    assert served._value.get() == before + 1


class Downstream:
    def __init__(self) -> None:
        self.recommender_status = 200

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "recommender.test":
            items = [{"video_id": "video-0001", "title": "t", "creator_id": "c", "source": "personalized"}]
            return httpx.Response(
                self.recommender_status,
                json={"user_id": "viewer-0002", "items": items} if self.recommender_status == 200 else {"detail": "no"},
            )
        if request.url.host == "views.test":
            return httpx.Response(200, json={"counts": {vid: 3 for vid in json.loads(request.content)["video_ids"]}})
        return httpx.Response(404)


@pytest.fixture
def gateway(tmp_path):
    deps = {name: [f"http://{name}.test"] for name in DEPENDENCIES}
    downstream = Downstream()
    with client_for("gateway", tmp_path, downstream, deps, profile="resilient") as client:
        client.downstream = downstream
        yield client


def test_the_feed_on_the_fast_path_is_the_routes_feed(gateway):
    fast = gateway.get("/feed", params={"limit": 3}, headers=AUTH)
    assert fast.status_code == 200
    assert fast.json() == {
        "user_id": "viewer-0002",
        "items": [
            {
                "video_id": "video-0001",
                "title": "t",
                "creator_id": "c",
                "source": "personalized",
                "views": 3,
                "views_status": "ok",
            }
        ],
    }


def test_a_bad_session_or_limit_gets_fastapis_own_answer(gateway):
    assert gateway.get("/feed").status_code == 401
    expired = gateway.get("/feed", headers={"Authorization": "Bearer nope"})
    assert expired.status_code == 401 and expired.json()["detail"]
    assert gateway.get("/feed", params={"limit": 99}, headers=AUTH).status_code == 422


def test_an_error_raised_on_the_fast_path_goes_to_the_apps_exception_handlers(gateway):
    gateway.downstream.recommender_status = 404  # our request was wrong: a 502 from the app's handler, not a 500
    answer = gateway.get("/feed", headers=AUTH)
    assert answer.status_code == 502 and "recommender refused the request (404: no)" in answer.json()["detail"]
