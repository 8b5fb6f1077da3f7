from __future__ import annotations

import json
import time

import httpx
import pytest
from fakes.stack import SECRET, SERVICE_KEY, client_for, swap_profile

from services.auth import api as auth_api
from services.common.names import DEPENDENCIES
from services.common.overload import AdmissionPolicy, DimmerPolicy, OverloadPolicy
from services.common.perimeter import SERVICE_KEY_HEADER, USER_HEADER
from services.common.policy import FallbackPolicy
from services.common.tokens import issue_token
from services.recommender import api as recommender_api
from services.views import api as views_api

DEPS = {name: [f"http://{name}.test"] for name in DEPENDENCIES}
TOKEN, _ = issue_token("creator-001", "creator", SECRET.encode(), 3600)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class World:
    """The gateway's four dependencies; each can be taken down."""

    def __init__(self) -> None:
        self.down: set[str] = set()
        self.calls: list[str] = []
        self.counts: dict[str, int] = {}  # views' answer per video (42 when not given)
        self.complete = True  # False: the views replica is cut off from its peer
        self.slow: dict[str, float] = {}  # seconds a dependency takes to answer

    def __call__(self, request: httpx.Request) -> httpx.Response:
        host, path = request.url.host.removesuffix(".test"), request.url.path
        self.calls.append(f"{host}{path}")
        time.sleep(self.slow.get(host, 0.0))  # blocks the gateway's loop: its answer and its next read are late
        if host in self.down:
            return httpx.Response(503)
        if host == "auth" and path == auth_api.VERIFY:
            ok = request.headers.get("authorization") == f"Bearer {TOKEN}"
            return (
                httpx.Response(200, json={"user_id": "creator-001", "role": "creator", "expires_at": 9e9})
                if ok
                else httpx.Response(401)
            )
        if host == "auth" and path == auth_api.LOGIN:
            return httpx.Response(
                200, json={"token": TOKEN, "user_id": "creator-001", "role": "creator", "expires_at": 9e9}
            )
        if host == "recommender" and path.startswith(recommender_api.RECOMMENDATIONS.partition("{")[0]):
            items = [
                {"video_id": f"video-{i:04d}", "title": "t", "creator_id": "c", "source": "personalized"}
                for i in (1, 2)
            ]
            return httpx.Response(200, json={"user_id": "creator-001", "items": items})
        if host == "recommender" and path == recommender_api.UPLOAD:
            sent = {"creator_id": request.headers.get(USER_HEADER), "key": request.headers.get(SERVICE_KEY_HEADER)}
            return httpx.Response(201, json={"video_id": "up-1", **sent, **json.loads(request.content)})
        if host == "views" and path == views_api.COUNTS:
            counts = {vid: self.counts.get(vid, 42) for vid in json.loads(request.content)["video_ids"]}
            return httpx.Response(200, json={"counts": counts, "complete": self.complete})
        if host == "views" and path == views_api.RECORD and json.loads(request.content)["event_id"] == "reused":
            return httpx.Response(409, json={"detail": "event_id reused: already recorded for video video-0001"})
        if host == "views" and path == views_api.RECORD:
            return httpx.Response(200, json={**json.loads(request.content), "counted": True})
        if host == "earnings":
            return httpx.Response(
                200, json={"creator_id": "creator-001", "views": 10, "earnings_cents": 4, "status": "ok"}
            )
        return httpx.Response(404)


@pytest.fixture
def world():
    return World()


@pytest.fixture
def gateway(tmp_path, world):
    with client_for("gateway", tmp_path, world, DEPS, profile="naive") as client:
        yield client


def test_feed_attaches_view_counts(gateway):
    body = gateway.get("/feed", headers=AUTH).json()
    assert [(i["video_id"], i["views"], i["views_status"]) for i in body["items"]] == [
        ("video-0001", 42, "ok"),
        ("video-0002", 42, "ok"),
    ]


def test_naive_feed_shows_zero_views_when_views_is_down(gateway, world):
    world.down.add("views")
    items = gateway.get("/feed", headers=AUTH).json()["items"]
    assert {(i["views"], i["views_status"]) for i in items} == {(0, "ok")}  # the outage's lie


def test_honest_fallback_shows_stale_or_unavailable_never_zero(gateway, world):
    swap_profile(gateway, fallbacks=FallbackPolicy(view_counts="stale_or_unavailable"))
    gateway.get("/feed", headers=AUTH)  # the gateway learns video-0001/2 = 42
    world.down.add("views")
    items = gateway.get("/feed", headers=AUTH).json()["items"]
    assert {(i["views"], i["views_status"]) for i in items} == {(42, "stale")}


def test_a_zero_from_a_views_replica_cut_off_from_its_peer_is_not_shown_under_the_honest_policy(gateway, world):
    swap_profile(gateway, fallbacks=FallbackPolicy(view_counts="stale_or_unavailable"))
    world.counts = {"video-0001": 42, "video-0002": 0}
    gateway.get("/feed", headers=AUTH)  # the gateway learns video-0001 = 42; video-0002 has no views yet
    world.counts, world.complete = (
        {"video-0001": 0, "video-0002": 0},
        False,
    )  # a partition: the other DC's views are not here
    items = gateway.get("/feed", headers=AUTH).json()["items"]
    assert [(i["views"], i["views_status"]) for i in items] == [(42, "stale"), (None, "unavailable")]
    world.complete = True  # the link healed: a 0 from a complete log is a real 0
    items = gateway.get("/feed", headers=AUTH).json()["items"]
    assert [(i["views"], i["views_status"]) for i in items] == [(0, "ok"), (0, "ok")]


def test_a_remembered_zero_is_never_shown_as_a_stale_count(gateway, world):
    """A new video read as 0 (true then), then viewed; when views fails, the fallback must not show that
    old 0: users would see 0 views of a video they just watched (found in a 200-user power-loss run)."""
    swap_profile(gateway, fallbacks=FallbackPolicy(view_counts="stale_or_unavailable"))
    world.counts = {"video-0001": 42, "video-0002": 0}
    gateway.get("/feed", headers=AUTH)
    world.down.add("views")  # overloaded or dark: the read fails, the fallback answers
    items = gateway.get("/feed", headers=AUTH).json()["items"]
    assert [(i["views"], i["views_status"]) for i in items] == [(42, "stale"), (None, "unavailable")]


def test_a_slow_stack_dims_feeds_to_remembered_counts_before_the_gateway_refuses_any(gateway, world):
    """The resilient profile's dimmer on the gateway's own admission windows (one answer closes each window
    here): a slow feed dims, so the next feed shows the last counts, marked stale, without asking views; fast
    windows brighten again. Step 1: from all to none and back, no randomness."""
    swap_profile(
        gateway,
        fallbacks=FallbackPolicy(view_counts="stale_or_unavailable"),
        overload=OverloadPolicy(
            # a limit of 1: the one feed in flight holds all of it (overload, not one slow request)
            admission=AdmissionPolicy(enabled=True, latency_target_s=0.05, initial_limit=1, min_limit=1),
            dimmer=DimmerPolicy(enabled=True, latency_target_s=0.05, step=1.0, min_full_share=0.0),
        ),
    )
    dimmer = gateway.app.state.ctx.dimmer
    gateway.get("/feed", headers=AUTH)  # the gateway learns video-0001/2 = 42
    world.counts = {"video-0001": 50, "video-0002": 50}
    world.slow["views"] = 0.2  # views is overloaded
    slow = gateway.get("/feed", headers=AUTH)
    assert [(i["views"], i["views_status"]) for i in slow.json()["items"]] == [(50, "ok")] * 2
    assert dimmer.full_share == 0.0  # that slow window dimmed the feeds instead of shrinking the limit
    assert 'blackout_dimmer_full_share{optional="feed_view_counts"} 0.0' in gateway.get("/metrics").text
    world.calls.clear()
    dimmed = gateway.get("/feed", headers=AUTH)
    assert dimmed.status_code == 200
    assert [(i["views"], i["views_status"]) for i in dimmed.json()["items"]] == [(50, "stale")] * 2
    assert not any(call.startswith("views") for call in world.calls)  # views was spared the read
    world.slow.clear()
    world.counts = {"video-0001": 60, "video-0002": 60}
    # Fast answers brighten it once the loop's lag from the slow reads has faded (a few 20-ms ticks).
    deadline, statuses = time.monotonic() + 5, []
    while time.monotonic() < deadline and statuses[-1:] != [[(60, "ok")] * 2]:
        items = gateway.get("/feed", headers=AUTH).json()["items"]
        statuses.append([(i["views"], i["views_status"]) for i in items])
    assert statuses[-1] == [(60, "ok")] * 2
    assert set(map(tuple, statuses[:-1])) <= {((50, "stale"),) * 2}  # dimmed until then, never refused


def test_the_naive_gateway_shows_a_cut_off_replicas_zero(gateway, world):
    world.counts, world.complete = {"video-0001": 0, "video-0002": 0}, False
    items = gateway.get("/feed", headers=AUTH).json()["items"]
    assert {(i["views"], i["views_status"]) for i in items} == {(0, "ok")}


def test_naive_feed_turns_generic_when_the_recommender_is_down(gateway, world):
    world.down.add("recommender")
    items = gateway.get("/feed", headers=AUTH).json()["items"]
    assert items and {i["source"] for i in items} == {"generic"}


def test_remote_verification_is_cached_but_uploads_verify_fresh(gateway, world):
    gateway.get("/feed", headers=AUTH)
    gateway.get("/feed", headers=AUTH)
    assert world.calls.count("auth/verify") == 1
    world.down.add("auth")
    assert gateway.get("/feed", headers=AUTH).status_code == 200  # cached session
    upload = gateway.post("/videos", json={"title": "clip"}, headers=AUTH)
    assert upload.status_code == 401  # a write needs a fresh verification; naive: unverifiable = logged out


def test_an_unverifiable_session_logs_the_user_out_only_under_the_logout_fallback(gateway, world):
    world.down.add("auth")
    logged_out = gateway.get("/feed", headers=AUTH)
    assert logged_out.status_code == 401 and "log in again" in logged_out.json()["detail"]
    swap_profile(gateway, fallbacks=FallbackPolicy(sessions="unavailable"))
    kept = gateway.get("/feed", headers=AUTH)
    assert kept.status_code == 503 and "cannot verify the session" in kept.json()["detail"]


def test_logins_fail_clearly_while_auth_is_down(gateway, world):
    assert gateway.post("/login", json={"username": "creator-001", "password": "x"}).status_code == 200
    world.down.add("auth")
    answer = gateway.post("/login", json={"username": "creator-001", "password": "x"})
    # auth answered 503 to every attempt: the gateway says so (502, a failed dependency), not "bad credentials"
    assert answer.status_code == 502 and "login unavailable" in answer.json()["detail"]


def test_missing_or_bad_tokens_get_401(gateway):
    assert gateway.get("/feed").status_code == 401
    assert gateway.get("/feed", headers={"Authorization": "Bearer nope"}).status_code == 401
    for malformed in ("Bearer", "Basic abc", "bearer", "Bearer  "):
        assert gateway.get("/feed", headers={"Authorization": malformed}).status_code == 401, malformed


def test_the_bearer_scheme_is_case_insensitive(gateway):
    token = AUTH["Authorization"].partition(" ")[2]
    assert gateway.get("/feed", headers={"Authorization": f"bearer {token}"}).status_code == 200


def test_view_write_reaches_the_log_with_the_callers_identity(gateway, world):
    answer = gateway.post("/videos/video-0009/view", json={"event_id": "e-1"}, headers=AUTH)
    assert answer.json() == {"event_id": "e-1", "video_id": "video-0009", "user_id": "creator-001", "counted": True}
    assert gateway.post("/videos/video-0009/view", json={"event_id": "bad id!"}, headers=AUTH).status_code == 422


def test_earnings_go_empty_under_naive_and_stale_under_honest_fallbacks(gateway, world):
    assert gateway.get("/me/earnings", headers=AUTH).json()["earnings_cents"] == 4
    world.down.add("earnings")
    assert gateway.get("/me/earnings", headers=AUTH).json()["earnings_cents"] is None
    swap_profile(gateway, fallbacks=FallbackPolicy(earnings="stale"))
    stale = gateway.get("/me/earnings", headers=AUTH).json()
    assert (stale["earnings_cents"], stale["status"]) == (4, "stale")


def test_responses_report_attempts_for_retry_amplification(gateway, world):
    world.down.add("views")
    answer = gateway.get("/feed", headers=AUTH)
    # verify 1 + recommender 1 + views 3 (naive: 3 immediate attempts)
    assert answer.headers["X-Blackout-Attempts"] == "5"
    assert answer.headers["X-Blackout-Calls"] == "3"


def test_an_upload_forwards_the_verified_user_and_the_service_credential(gateway):
    upload = gateway.post("/videos", json={"title": "clip", "creator_id": "someone-else"}, headers=AUTH)
    assert upload.status_code == 201
    assert upload.json()["creator_id"] == "creator-001" and upload.json()["key"] == SERVICE_KEY


def test_an_event_id_reused_for_another_video_is_the_users_409(gateway):
    reused = gateway.post("/videos/video-0002/view", json={"event_id": "reused"}, headers=AUTH)
    assert reused.status_code == 409 and "video-0001" in reused.json()["detail"]
