"""The shared HTTP client throttles itself when a dependency refuses most calls (httpx.MockTransport)."""

from __future__ import annotations

import asyncio
import itertools

import httpx

from services.common.errors import DependencyError
from services.common.http import DependencyClient
from services.common.metrics import DEP_CALLS
from services.common.overload import ClientThrottlePolicy, OverloadPolicy
from services.common.policy import DependencyPolicy, Profile, ProfileHolder

_names = itertools.count()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _client(
    status: dict[str, int], throttle: bool, clock: Clock | None = None
) -> tuple[DependencyClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status["now"], json={})

    profile = Profile(
        name="t",
        default=DependencyPolicy(timeout_s=1.0),
        overload=OverloadPolicy(client_throttle=ClientThrottlePolicy(enabled=throttle)),
    )
    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    name = f"throttled{next(_names)}"
    return DependencyClient(name, ["http://dep"], ProfileHolder(profile), http, clock=clock or Clock()), seen


async def _outcomes(client: DependencyClient, n: int) -> list[str]:
    out = []
    for _ in range(n):
        try:
            await client.request("GET", "/x")
            out.append("success")
        except DependencyError as exc:
            out.append(exc.outcome)
    return out


def test_a_refusing_dependency_gets_fewer_calls_and_the_rest_fail_fast_as_throttled() -> None:
    status = {"now": 503}
    client, seen = _client(status, throttle=True)
    outcomes = asyncio.run(_outcomes(client, 400))
    assert outcomes.count("throttled") > 250  # nearly everything refused locally once accepts stay at 0
    assert len(seen) == outcomes.count("error") < 150
    assert DEP_CALLS.labels(client.name, "throttled")._value.get() == outcomes.count("throttled")


def test_healthy_calls_are_never_throttled_and_off_means_off() -> None:
    healthy, seen = _client({"now": 200}, throttle=True)
    assert asyncio.run(_outcomes(healthy, 200)) == ["success"] * 200 and len(seen) == 200
    off, seen_off = _client({"now": 503}, throttle=False)
    assert set(asyncio.run(_outcomes(off, 100))) == {"error"} and len(seen_off) == 100


def test_a_dependency_that_recovers_gets_its_traffic_back_within_a_few_calls() -> None:
    status = {"now": 503}
    client, seen = _client(status, throttle=True)
    asyncio.run(_outcomes(client, 100))
    status["now"] = 200
    later = asyncio.run(_outcomes(client, 300))
    assert later[-100:] == ["success"] * 100  # no two-minute lock-out
