"""DependencyClient under a profile, with httpx.MockTransport standing in for the downstream services."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.common import accounting
from services.common.errors import DependencyError, DependencyRejected
from services.common.http import DependencyClient
from services.common.metrics import BREAKER_STATE, BULKHEAD_IN_FLIGHT, BULKHEAD_REJECTED, DEP_CALLS, RETRY_BUDGET
from services.common.policy import DependencyPolicy, Profile, ProfileHolder, load_profile
from services.common.resilience import DEADLINE_HEADER, set_deadline

NAIVE = Path(__file__).resolve().parents[3] / "profiles" / "naive.yaml"
A, B = "http://dc1-views", "http://dc2-views"
_names = itertools.count()

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Downstream:
    """Counts the requests each instance received; answers with ``answer(request)``."""

    def __init__(self, answer: Callable[[httpx.Request], Any]) -> None:
        self.answer = answer
        self.hits: Counter[str] = Counter()
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.hits[f"{request.url.scheme}://{request.url.host}"] += 1
        self.requests.append(request)
        result = self.answer(request)
        if asyncio.iscoroutine(result):
            result = await result
        if isinstance(result, int):
            return httpx.Response(result, json={"status": result})
        return result


def profile(deadline_propagation: bool = False, **policy: Any) -> Profile:
    return Profile(name="test", deadline_propagation=deadline_propagation, default=DependencyPolicy(**policy))


def client_for(
    downstream: Downstream, prof: Profile, urls: tuple[str, ...] = (A, B), **kwargs: Any
) -> tuple[DependencyClient, ProfileHolder]:
    holder = ProfileHolder(prof)
    http = httpx.AsyncClient(transport=httpx.MockTransport(downstream))
    name = f"dep{next(_names)}"  # a fresh metrics label per test
    return DependencyClient(name, list(urls), holder, http, **kwargs), holder


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)


async def outcome_of(client: DependencyClient, path: str = "/x") -> str:
    try:
        await client.request("GET", path)
    except DependencyError as exc:
        return exc.outcome
    return "success"


def metric(gauge_or_counter: Any, *labels: str) -> float:
    return gauge_or_counter.labels(*labels)._value.get()


# -- retries -------------------------------------------------------------------------------------


def test_naive_profile_retries_immediately_and_counts_every_attempt():
    down = Downstream(lambda r: 500)
    sleeps: list[float] = []

    async def record(s: float) -> None:
        sleeps.append(s)

    client, _ = client_for(down, load_profile(NAIVE), sleep=record)

    async def body() -> accounting.RequestAccount:
        account = accounting.begin()
        assert await outcome_of(client) == "error"
        return account

    account = run(body())
    assert down.hits == {A: 3}  # no failover in naive
    assert (account.calls, account.attempts) == (1, 3)
    assert all(s == 0 for s in sleeps)  # immediate
    assert metric(DEP_CALLS, client.name, "error") == 1


def test_a_4xx_is_returned_not_retried_and_is_a_success_for_the_breaker():
    down = Downstream(lambda r: 404)
    client, _ = client_for(down, profile(retries={"attempts": 3}, breaker={"enabled": True, "failure_threshold": 1}))

    async def body() -> None:
        for _ in range(3):
            response = await client.request("GET", "/missing")
            assert response.status_code == 404
        with pytest.raises(DependencyRejected) as info:  # the dependency is up: not an outage
            await client.get_json("/missing")
        assert info.value.status == 404

    run(body())
    assert down.hits == {A: 4}  # one attempt each, and the breaker never opened
    assert metric(BREAKER_STATE, client.name, A) == 0


def test_a_slow_answer_is_classified_as_timeout():
    async def slow(request: httpx.Request) -> int:
        await asyncio.sleep(1.0)
        return 200

    client, _ = client_for(Downstream(slow), profile(timeout_s=0.05, retries={"attempts": 2}))
    started = time.monotonic()
    assert run(outcome_of(client)) == "timeout"
    assert time.monotonic() - started < 0.5


def test_exponential_backoff_waits_grow():
    sleeps: list[float] = []

    async def record(s: float) -> None:
        sleeps.append(s)

    policy = {"attempts": 4, "backoff": "exponential", "base_s": 0.02, "max_s": 0.05}
    client, _ = client_for(Downstream(lambda r: 503), profile(retries=policy), sleep=record)
    assert run(outcome_of(client)) == "error"
    assert sleeps == pytest.approx([0.02, 0.04, 0.05])


# -- failover ------------------------------------------------------------------------------------


def _dc1_down(request: httpx.Request) -> int:
    if request.url.host == "dc1-views":
        raise httpx.ConnectError("connection refused", request=request)
    return 200


def test_failover_reaches_the_second_instance():
    down = Downstream(_dc1_down)
    client, _ = client_for(down, profile(failover=True, retries={"attempts": 2}))

    async def body() -> accounting.RequestAccount:
        account = accounting.begin()
        assert (await client.get_json("/x")) == {"status": 200}
        return account

    account = run(body())
    assert down.hits == {A: 2, B: 1}
    assert (account.calls, account.attempts) == (1, 3)


def test_without_failover_only_the_first_instance_is_tried():
    down = Downstream(_dc1_down)
    client, _ = client_for(down, profile(failover=False))
    assert run(outcome_of(client)) == "error"
    assert down.hits == {A: 1}


# -- circuit breaker -----------------------------------------------------------------------------


def test_breaker_opens_after_the_threshold_then_short_circuits_without_calling():
    down = Downstream(lambda r: 500)
    clock = FakeClock()
    breaker = {"enabled": True, "failure_threshold": 3, "reset_timeout_s": 5.0}
    client, _ = client_for(down, profile(breaker=breaker), clock=clock)

    async def body() -> list[str]:
        return [await outcome_of(client) for _ in range(5)]

    assert run(body()) == ["error"] * 3 + ["short_circuited"] * 2
    assert down.hits == {A: 3}
    assert metric(BREAKER_STATE, client.name, A) == 2

    # after the reset timeout one trial goes through; a success closes the breaker
    down.answer = lambda r: 200
    clock.now += 5.0
    assert run(outcome_of(client)) == "success"
    assert down.hits == {A: 4}
    assert metric(BREAKER_STATE, client.name, A) == 0


def test_failover_skips_an_open_breaker():
    down = Downstream(_dc1_down)
    breaker = {"enabled": True, "failure_threshold": 2, "reset_timeout_s": 60.0}
    client, _ = client_for(down, profile(breaker=breaker, failover=True), clock=FakeClock())

    async def body() -> list[str]:
        return [await outcome_of(client) for _ in range(5)]

    assert run(body()) == ["success"] * 5
    assert down.hits == {A: 2, B: 5}  # dc1 is not called once its breaker is open
    assert metric(BREAKER_STATE, client.name, A) == 2
    assert metric(BREAKER_STATE, client.name, B) == 0


def test_a_failed_attempt_beats_a_later_short_circuit_in_the_outcome():
    """The breaker opens during the retries: an attempt was sent, so the outcome is not 'short_circuited'."""
    down = Downstream(lambda r: 500)
    breaker = {"enabled": True, "failure_threshold": 2, "reset_timeout_s": 60.0}
    client, _ = client_for(down, profile(breaker=breaker, retries={"attempts": 3}), clock=FakeClock())
    assert run(outcome_of(client)) == "error"
    assert down.hits == {A: 2}
    assert run(outcome_of(client)) == "short_circuited"


def test_the_resilient_breaker_rides_out_a_burst_of_failures_and_opens_on_a_dead_instance():
    """profiles/resilient.yaml's own breakers: a run of failures among many answers (a saturated caller timing
    out its own calls) leaves the instance in use; an instance that fails every call is cut off as before."""
    failing = False
    down = Downstream(lambda r: 500 if failing and r.url.host == "dc1-views" else 200)
    clock = FakeClock()

    async def no_wait(_: float) -> None:
        pass

    client, _ = client_for(down, load_profile(NAIVE.with_name("resilient.yaml")), clock=clock, sleep=no_wait)

    async def calls(n: int) -> list[str]:
        return [await outcome_of(client) for _ in range(n)]

    assert run(calls(60)) == ["success"] * 60
    failing = True
    assert run(calls(6)) == ["success"] * 6  # failed over to dc2
    assert down.hits[A] >= 60 + 6 and metric(BREAKER_STATE, client.name, A) == 0  # 6+ failures in a row
    clock.now += 2.5  # the window's answers age out: dc1 is dark
    assert run(calls(5)) == ["success"] * 5
    assert metric(BREAKER_STATE, client.name, A) == 2
    hits = down.hits[A]
    run(calls(5))
    assert down.hits[A] == hits  # short-circuited: no longer called


# -- retry budget --------------------------------------------------------------------------------


def test_an_empty_retry_budget_stops_retries():
    down = Downstream(lambda r: 500)
    budget = {"enabled": True, "ratio": 0.0, "min_retries_per_s": 1}  # one token, refilled 1/s
    client, _ = client_for(down, profile(retries={"attempts": 3}, retry_budget=budget), clock=FakeClock())

    async def body() -> list[int]:
        attempts = []
        for _ in range(3):
            account = accounting.begin()
            await outcome_of(client)
            attempts.append(account.attempts)
        return attempts

    assert run(body()) == [2, 1, 1]  # the only token paid for one retry; the clock stands still
    assert metric(RETRY_BUDGET, client.name) == 0


# -- bulkhead ------------------------------------------------------------------------------------


def test_a_full_bulkhead_rejects_without_calling():
    async def body() -> None:
        release = asyncio.Event()

        async def held(request: httpx.Request) -> int:
            await release.wait()
            return 200

        down = Downstream(held)
        client, _ = client_for(down, profile(bulkhead={"max_concurrent": 2}))
        calls = [asyncio.create_task(client.request("GET", "/x")) for _ in range(2)]
        while sum(down.hits.values()) < 2:
            await asyncio.sleep(0)
        assert metric(BULKHEAD_IN_FLIGHT, client.name) == 2
        assert await outcome_of(client) == "rejected"
        assert sum(down.hits.values()) == 2
        assert metric(BULKHEAD_REJECTED, client.name) == 1
        release.set()
        assert [r.status_code for r in await asyncio.gather(*calls)] == [200, 200]
        assert metric(BULKHEAD_IN_FLIGHT, client.name) == 0
        assert await outcome_of(client) == "success"

    run(body())


# -- deadlines -----------------------------------------------------------------------------------


def test_an_expired_deadline_sends_nothing():
    down = Downstream(lambda r: 200)
    client, _ = client_for(down, profile(deadline_propagation=True))

    async def body() -> accounting.RequestAccount:
        account = accounting.begin()
        set_deadline(-0.01)
        assert await outcome_of(client) == "deadline"
        return account

    account = run(body())
    assert not down.hits
    assert (account.calls, account.attempts) == (1, 0)


def test_deadlines_are_ignored_when_the_profile_does_not_propagate_them():
    down = Downstream(lambda r: 200)
    client, _ = client_for(down, profile(deadline_propagation=False))

    async def body() -> None:
        set_deadline(-0.01)
        assert await outcome_of(client) == "success"

    run(body())
    assert DEADLINE_HEADER not in down.requests[0].headers


def test_every_attempt_sends_the_time_left():
    async def slow_then_ok(request: httpx.Request) -> int:
        await asyncio.sleep(0.02)
        return 200 if len(down.requests) == 3 else 500

    down = Downstream(slow_then_ok)
    client, _ = client_for(down, profile(deadline_propagation=True, retries={"attempts": 3}))

    async def body() -> None:
        set_deadline(1.0)
        await client.request("GET", "/x", headers={"Authorization": "Bearer t"})

    run(body())
    sent = [float(r.headers[DEADLINE_HEADER]) for r in down.requests]
    assert len(sent) == 3 and sent[0] <= 1000
    assert sent[0] > sent[1] > sent[2]
    assert all(r.headers["Authorization"] == "Bearer t" for r in down.requests)  # caller's headers kept


def test_the_deadline_caps_the_attempt_timeout_and_stops_retries():
    async def slow(request: httpx.Request) -> int:
        await asyncio.sleep(2.0)
        return 200

    down = Downstream(slow)
    breaker = {"enabled": True, "failure_threshold": 1}
    client, _ = client_for(
        down,
        profile(deadline_propagation=True, timeout_s=5.0, retries={"attempts": 3}, breaker=breaker, failover=True),
    )

    async def body() -> str:
        set_deadline(0.1)
        return await outcome_of(client)

    started = time.monotonic()
    assert run(body()) == "timeout"  # sent, so not "deadline"
    assert time.monotonic() - started < 1.0
    assert down.hits == {A: 1}  # neither retried nor failed over: no time left
    assert metric(BREAKER_STATE, client.name, A) == 0  # our deadline is not the dependency's fault


# -- live profile swap ---------------------------------------------------------------------------


def test_a_live_swap_rebuilds_breakers_and_applies_to_the_next_call():
    down = Downstream(lambda r: 500)
    breaker = {"enabled": True, "failure_threshold": 1, "reset_timeout_s": 60.0}
    client, holder = client_for(down, profile(breaker=breaker), clock=FakeClock())
    assert run(outcome_of(client)) == "error"
    assert run(outcome_of(client)) == "short_circuited"

    holder.swap(profile(breaker=breaker))  # an equal policy: the state is kept
    assert run(outcome_of(client)) == "short_circuited"

    holder.swap(profile(retries={"attempts": 2}))  # no breaker, two attempts
    assert run(outcome_of(client)) == "error"
    assert down.hits == {A: 3}
    assert metric(BREAKER_STATE, client.name, A) == 0  # rebuilt (lazily, by that call)
