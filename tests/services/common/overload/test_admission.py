"""AdmissionMiddleware on a real app: fast 503s past the limit, a small share for logins, health never refused."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI

from services.common.overload import AdmissionMiddleware, AdmissionPolicy, priority_of
from services.common.overload.metrics import SHED

POLICY = AdmissionPolicy(
    enabled=True, initial_limit=10, min_limit=2, max_limit=10, login_share=0.2, latency_target_s=5.0, retry_after_s=2
)


def make_app(policy: AdmissionPolicy) -> tuple[FastAPI, asyncio.Event]:
    release = asyncio.Event()
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict:
        await release.wait()
        return {"status": "ok"}

    @app.get("/feed")
    async def feed() -> dict:
        await release.wait()
        return {"items": []}

    @app.post("/login")
    async def login() -> dict:
        await release.wait()
        return {"token": "t"}

    current = {"policy": policy}
    app.add_middleware(AdmissionMiddleware, policy=lambda: current["policy"])
    app.state.current = current
    return app, release


async def _hold(client: httpx.AsyncClient, method: str, path: str, n: int) -> list[asyncio.Task]:
    tasks = [asyncio.create_task(client.request(method, path)) for _ in range(n)]
    await asyncio.sleep(0.05)  # let them reach the handler, where they wait for `release`
    return tasks


def test_past_the_limit_requests_get_a_fast_503_with_retry_after() -> None:
    asyncio.run(_test_past_the_limit_requests_get_a_fast_503_with_retry_after())


async def _test_past_the_limit_requests_get_a_fast_503_with_retry_after() -> None:
    app, release = make_app(POLICY)
    before = SHED.labels("normal")._value.get()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
        held = await _hold(client, "GET", "/feed", 10)
        refused = await asyncio.wait_for(client.get("/feed"), timeout=1)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "2"
        assert "overloaded" in refused.json()["detail"]
        health = await _hold(client, "GET", "/healthz", 3)  # critical: admitted past the limit
        release.set()
        assert all(r.status_code == 200 for r in await asyncio.gather(*held, *health))
        assert (await client.get("/feed")).status_code == 200  # room again
    assert SHED.labels("normal")._value.get() == before + 1


def test_logins_hold_only_their_share_and_cannot_starve_feeds() -> None:
    asyncio.run(_test_logins_hold_only_their_share_and_cannot_starve_feeds())


async def _test_logins_hold_only_their_share_and_cannot_starve_feeds() -> None:
    app, release = make_app(POLICY)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
        logins = await _hold(client, "POST", "/login", 2)  # 20% of 10
        assert (await asyncio.wait_for(client.post("/login"), timeout=1)).status_code == 503
        feeds = await _hold(client, "GET", "/feed", 8)  # feeds still get the rest
        assert (await asyncio.wait_for(client.get("/feed"), timeout=1)).status_code == 503
        release.set()
        assert all(r.status_code == 200 for r in await asyncio.gather(*logins, *feeds))


def test_off_admits_everything_and_a_live_switch_turns_it_on() -> None:
    asyncio.run(_test_off_admits_everything_and_a_live_switch_turns_it_on())


async def _test_off_admits_everything_and_a_live_switch_turns_it_on() -> None:
    app, release = make_app(AdmissionPolicy())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
        held = await _hold(client, "GET", "/feed", 40)
        app.state.current["policy"] = POLICY
        assert (await asyncio.wait_for(client.get("/feed"), timeout=1)).status_code == 503
        release.set()
        assert all(r.status_code == 200 for r in await asyncio.gather(*held))


def test_priorities() -> None:
    assert [priority_of(p) for p in ("/healthz", "/metrics", "/admin/profile", "/login", "/feed")] == [
        "critical",
        "critical",
        "critical",
        "login",
        "normal",
    ]
