"""Client-side faults in DependencyClient, with httpx.MockTransport standing in for the dependency."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from services.common.errors import DependencyError
from services.common.faults import FaultRegistry, FaultSpec
from services.common.http import DependencyClient
from services.common.policy import DependencyPolicy, Profile, ProfileHolder

A, B = "http://views-a:8002", "http://views-b:8002"
_names = itertools.count()


class Downstream:
    """Answers 200 and counts what each instance actually received."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.hits[f"{request.url.scheme}://{request.url.host}:{request.url.port}"] += 1
        return httpx.Response(200, json={"ok": True})


def dependency(
    down: Downstream, faults: FaultRegistry, urls: tuple[str, ...] = (A, B), **policy: Any
) -> DependencyClient:
    profile = Profile(name="test", default=DependencyPolicy(**policy))
    http = httpx.AsyncClient(transport=httpx.MockTransport(down))
    return DependencyClient(f"faultdep{next(_names)}", list(urls), ProfileHolder(profile), http, faults=faults)


def spec(kind: str, **fields: Any) -> FaultSpec:
    return FaultSpec.model_validate({"kind": kind, "lease_s": 60, **fields})


async def outcome(client: DependencyClient) -> str:
    try:
        await client.request("GET", "/x")
    except DependencyError as exc:
        return exc.outcome
    return "success"


def test_latency_waits_latency_plus_jitter_before_each_attempt_to_a_target():
    down, faults = Downstream(), FaultRegistry()
    delays: list[float] = []

    async def record(seconds: float) -> None:
        delays.append(seconds)

    faults.sleep = record
    faults.put("slow", spec("latency", targets=[A], latency_ms=200, jitter_ms=100, seed=3))
    client = dependency(down, faults)
    assert [asyncio.run(outcome(client)) for _ in range(20)] == ["success"] * 20
    assert len(delays) == 20 and all(0.2 <= d <= 0.3 for d in delays)
    assert down.hits == {A: 20}  # delayed, then sent


def test_real_latency_is_felt_and_a_delay_beyond_the_timeout_times_the_attempt_out():
    down, faults = Downstream(), FaultRegistry()
    client = dependency(down, faults, timeout_s=0.5)
    faults.put("slow", spec("latency", latency_ms=150))
    started = time.monotonic()
    assert asyncio.run(outcome(client)) == "success"
    assert time.monotonic() - started >= 0.15

    faults.put("slow", spec("latency", latency_ms=5000))  # replaced: now far beyond the 0.5 s timeout
    started = time.monotonic()
    assert asyncio.run(outcome(client)) == "timeout"
    assert 0.5 <= time.monotonic() - started < 2.0  # the attempt's timeout ended it, not the delay
    assert down.hits == {A: 1}  # the timed-out attempt was never sent


def test_error_rate_is_honoured_and_an_injected_error_sends_nothing():
    down, faults = Downstream(), FaultRegistry()
    faults.put("flaky", spec("error", error_rate=0.3, seed=11))
    client = dependency(down, faults)
    outcomes = Counter(asyncio.run(outcome(client)) for _ in range(1000))
    assert set(outcomes) == {"success", "error"}
    assert 240 <= outcomes["error"] <= 360  # 0.3 of 1000, seeded: a fixed draw within ~4 sigma
    assert down.hits[A] == outcomes["success"]  # the injected 503s never reached the dependency


def test_an_error_rate_of_one_fails_every_attempt_and_retries_are_injected_too():
    down, faults = Downstream(), FaultRegistry()
    faults.put("down", spec("error", error_rate=1.0))
    client = dependency(down, faults, retries={"attempts": 3})
    assert asyncio.run(outcome(client)) == "error"
    assert down.hits == {}


def test_a_blackhole_turns_every_attempt_into_a_timeout_and_sends_nothing():
    down, faults = Downstream(), FaultRegistry()
    faults.put("partition", spec("blackhole", targets=[A]))
    client = dependency(down, faults, timeout_s=0.05, retries={"attempts": 2})
    started = time.monotonic()
    assert asyncio.run(outcome(client)) == "timeout"
    assert time.monotonic() - started >= 0.1  # two attempts, each waited out its whole timeout
    assert down.hits == {}


def test_only_the_listed_targets_are_affected_and_failover_routes_around_them():
    down, faults = Downstream(), FaultRegistry()
    faults.put("partition", spec("blackhole", targets=[A + "/"]))  # a trailing slash still matches
    client = dependency(down, faults, timeout_s=0.05, failover=True)
    assert asyncio.run(outcome(client)) == "success"
    assert down.hits == {B: 1}

    only_b = dependency(down, faults, urls=(B,))
    assert asyncio.run(outcome(only_b)) == "success"


def test_no_targets_means_every_dependency_call():
    down, faults = Downstream(), FaultRegistry()
    faults.put("everything", spec("error", error_rate=1.0))
    for urls in ((A,), (B,), ("http://recommender:8004",)):
        assert asyncio.run(outcome(dependency(down, faults, urls=urls))) == "error"
    assert down.hits == {}


def test_a_brownout_does_not_touch_outgoing_calls():
    down, faults = Downstream(), FaultRegistry()
    delays: list[float] = []

    async def record(seconds: float) -> None:
        delays.append(seconds)

    faults.sleep = record
    faults.put("slow-server", spec("brownout", latency_ms=500, targets=[A]))
    assert asyncio.run(outcome(dependency(down, faults))) == "success"
    assert delays == [] and down.hits == {A: 1}


@pytest.mark.parametrize("kind", ["latency", "error", "blackhole"])
def test_without_faults_the_client_sends_as_before(kind: str):
    down, faults = Downstream(), FaultRegistry()
    faults.put("gone", spec(kind, error_rate=1.0, latency_ms=10_000))
    assert faults.remove("gone")
    assert asyncio.run(outcome(dependency(down, faults, timeout_s=0.5))) == "success"
    assert down.hits == {A: 1}
