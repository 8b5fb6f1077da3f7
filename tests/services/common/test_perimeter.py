"""Real service processes: a foreign Host, an oversized body and a caller without the stack's service
credential are refused; peers holding the credential (and users through the gateway) are served."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest
from fakes.one_dc import running

from services.common.perimeter import MAX_BODY_BYTES, SERVICE_KEY_HEADER
from services.common.seed import DEMO_PASSWORD

PROJECT = Path(__file__).resolve().parents[3]
FOREIGN = {"Host": "attacker.example"}  # what a DNS-rebinding page in a local browser sends
FORGED = {
    "events": [{"event_id": "forged-1", "video_id": "video-0005", "user_id": "viewer-0001", "t": 1.0}],
    "source": "attacker",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    # exec'd processes (no zygote): each one's /proc environ is its environment
    with running(tmp_path_factory.mktemp("run"), zygote=False) as runtime:
        yield runtime


@pytest.fixture
def client():
    with httpx.Client(timeout=10.0) as c:
        yield c


def peer(stack) -> dict[str, str]:
    return {SERVICE_KEY_HEADER: stack.service_key}


def views_of(client: httpx.Client, views: str, video: str) -> int:
    return client.get(f"{views}/videos/{video}/views").json()["views"]


def login(client: httpx.Client, gateway: str, user: str) -> dict[str, str]:
    answer = client.post(gateway + "/login", json={"username": user, "password": DEMO_PASSWORD})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def test_every_service_refuses_a_foreign_host_name(stack, client):
    for name in stack.topology.instances():
        url = stack.topology.url(name)
        refused = client.get(url + "/healthz", headers=FOREIGN)
        assert refused.status_code == 400, name
        assert client.get(url + "/healthz", headers={"Host": "localhost"}).status_code == 200, name
        assert client.get(url + "/healthz").status_code == 200, name  # 127.0.0.1:<port>


def test_a_forged_replication_batch_is_refused_and_not_counted(stack, client):
    views = stack.topology.url("views-1")
    before = views_of(client, views, "video-0005")
    assert client.post(views + "/replication/events", json=FORGED, headers=FOREIGN).status_code == 400
    anonymous = client.post(views + "/replication/events", json=FORGED)
    assert anonymous.status_code == 401 and SERVICE_KEY_HEADER in anonymous.json()["detail"]
    guessed = client.post(views + "/replication/events", json=FORGED, headers={SERVICE_KEY_HEADER: "guess"})
    assert guessed.status_code == 401
    assert client.post(views + "/replication/events/known", json={"ids": ["x"]}).status_code == 401
    assert views_of(client, views, "video-0005") == before
    # a peer holding the stack's credential is heard
    assert client.post(views + "/replication/events", json=FORGED, headers=peer(stack)).json() == {"applied": 1}
    assert views_of(client, views, "video-0005") == before + 1


def test_views_are_recorded_only_through_the_gateway(stack, client):
    views, gateway = stack.topology.url("views-1"), stack.topology.url("gateway-1")
    before = views_of(client, views, "video-0006")
    direct = client.post(
        views + "/views", json={"event_id": "e-direct", "video_id": "video-0006", "user_id": "viewer-0001"}
    )
    assert direct.status_code == 401
    auth = login(client, gateway, "viewer-0004")
    watched = client.post(gateway + "/videos/video-0006/view", json={"event_id": "e-gw"}, headers=auth)
    assert watched.status_code == 200 and watched.json()["counted"] is True
    assert views_of(client, views, "video-0006") == before + 1


def test_an_upload_takes_its_creator_from_the_verified_user_never_the_body(stack, client):
    recommender, gateway = stack.topology.url("recommender-1"), stack.topology.url("gateway-1")
    owned = client.get(recommender + "/creators/creator-001/videos").json()["video_ids"]
    forged = client.post(recommender + "/videos", json={"title": "forged", "creator_id": "creator-001"})
    assert forged.status_code == 401
    assert client.get(recommender + "/creators/creator-001/videos").json()["video_ids"] == owned
    auth = login(client, gateway, "viewer-0003")
    uploaded = client.post(gateway + "/videos", json={"title": "mine", "creator_id": "creator-001"}, headers=auth)
    assert uploaded.status_code == 201 and uploaded.json()["creator_id"] == "viewer-0003"
    assert uploaded.json()["video_id"] in client.get(recommender + "/creators/viewer-0003/videos").json()["video_ids"]
    assert client.get(recommender + "/creators/creator-001/videos").json()["video_ids"] == owned


def test_a_body_over_one_mib_is_refused_with_413(stack, client):
    big = b'{"video_ids": ["' + b"a" * MAX_BODY_BYTES + b'"]}'
    json_type = {"Content-Type": "application/json"}
    for name, path in (("views-1", "/views/counts"), ("gateway-1", "/login")):
        url = stack.topology.url(name) + path
        declared = client.post(url, content=big, headers=json_type)
        assert declared.status_code == 413 and "body over" in declared.text, name
        chunked = client.post(url, content=iter([big[: len(big) // 2], big[len(big) // 2 :]]), headers=json_type)
        assert chunked.status_code == 413 and "body over" in chunked.text, name
    fine = client.post(stack.topology.url("views-1") + "/views/counts", json={"video_ids": ["video-0001"]})
    assert fine.status_code == 200


def test_only_auth_and_the_gateway_hold_the_token_secret(stack):
    for name, state in stack.status().items():
        env = psutil.Process(state["pid"]).environ()
        assert ("BLACKOUT_TOKEN_SECRET" in env) == (state["service"] in ("auth", "gateway")), name
        assert env["BLACKOUT_SERVICE_KEY"] == stack.service_key, name


def test_a_service_without_the_service_key_does_not_start(tmp_path: Path):
    env = {
        "PATH": os.environ["PATH"],
        "BLACKOUT_SERVICE": "views",
        "BLACKOUT_INSTANCE": "views-1",
        "BLACKOUT_DC": "dc-1",
        "BLACKOUT_PORT": "1",
        "BLACKOUT_DATA_DIR": str(tmp_path),
    }
    ended = subprocess.run(
        [sys.executable, "-m", "services.common.runner"],
        env=env,
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ended.returncode == 2 and "BLACKOUT_SERVICE_KEY" in ended.stderr
