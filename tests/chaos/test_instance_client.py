"""The client the controller side talks to instances with, against an httpx.MockTransport."""

from __future__ import annotations

import httpx

from chaos.instance_client import InstanceClient


def test_healthy_is_a_200_from_healthz_and_no_answer_is_not_healthy():
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "dark":
            raise httpx.ReadTimeout("no answer", request=request)
        assert request.url.path == "/healthz"
        return httpx.Response(200 if request.url.host == "up" else 503)

    with InstanceClient(1.0, transport=httpx.MockTransport(answer)) as client:
        assert client.healthy("http://up")
        assert not client.healthy("http://booting")
        assert not client.healthy("http://dark")


def test_an_admin_call_carries_the_secret_and_says_its_outcome():
    seen: list[tuple[str, str | None, bytes]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.headers.get("Authorization"), request.content))
        if request.url.host == "dark":
            raise httpx.ConnectTimeout("no answer", request=request)
        if request.url.host == "refusing":
            return httpx.Response(422, text="timeout_s: " + "x" * 300)
        return httpx.Response(200)

    with InstanceClient(1.0, admin_secret="s3cret", transport=httpx.MockTransport(answer)) as client:
        assert client.outcome("PUT", "http://up/admin/profile", {"name": "naive"}) == "ok"
        refused = client.outcome("PUT", "http://refusing/admin/profile", {"name": "naive"})
        assert refused.startswith("HTTP 422: timeout_s: ") and len(refused) == len("HTTP 422: ") + 200
        assert client.outcome("DELETE", "http://dark/admin/faults/f") == "no answer (ConnectTimeout)"
    assert seen[0] == ("PUT", "Bearer s3cret", b'{"name":"naive"}')
    assert {auth for _, auth, _ in seen} == {"Bearer s3cret"}


def test_without_a_secret_no_authorization_is_sent():
    headers: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        headers.append(request.headers.get("Authorization"))
        return httpx.Response(200, text="metrics")

    with InstanceClient(1.0, transport=httpx.MockTransport(answer)) as client:
        assert client.get("http://up/metrics").text == "metrics"
    assert headers == [None]
