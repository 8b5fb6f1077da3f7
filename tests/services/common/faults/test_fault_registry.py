"""FaultRegistry on its own: leases on a fake clock, renewal, removal, the gauge, seeded draws."""

from __future__ import annotations

import asyncio
import logging

import pytest
from prometheus_client import REGISTRY

from services.common.faults import FAULT_HEADER, FaultRegistry, FaultSpec


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def active_gauge(kind: str) -> float:
    return REGISTRY.get_sample_value("blackout_faults_active", {"kind": kind}) or 0.0


def spec(kind: str = "latency", **fields: object) -> FaultSpec:
    return FaultSpec.model_validate({"kind": kind, "lease_s": 10, **fields})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry(clock: FakeClock) -> FaultRegistry:
    return FaultRegistry(clock=clock)


def test_a_fault_expires_by_itself_when_its_lease_runs_out(registry, clock, caplog):
    before = active_gauge("blackhole")
    registry.put("cut", spec("blackhole", lease_s=5))
    assert active_gauge("blackhole") == before + 1
    clock.now += 4.9
    assert [f["id"] for f in registry.active()] == ["cut"]
    assert registry.active()[0]["expires_in_s"] == pytest.approx(0.1)
    clock.now += 0.1
    with caplog.at_level(logging.WARNING, logger="blackout.faults"):
        assert registry.active() == []
    assert "fault cut (blackhole) expired" in caplog.text
    assert active_gauge("blackhole") == before


def test_an_expired_fault_no_longer_acts_on_attempts(registry, clock):
    registry.put("boom", spec("error", error_rate=1.0, lease_s=1))
    assert asyncio.run(registry.before_attempt("http://a")) is not None
    clock.now += 1
    assert asyncio.run(registry.before_attempt("http://a")) is None


def test_a_put_with_the_same_id_renews_the_lease_and_replaces_the_fault(registry, clock):
    before_latency, before_error = active_gauge("latency"), active_gauge("error")
    registry.put("f", spec("latency", lease_s=10))
    clock.now += 8
    renewed = registry.put("f", spec("error", error_rate=0.5, lease_s=10))
    assert registry.expires_in_s(renewed) == 10
    clock.now += 8  # 16 s after the first PUT: alive only thanks to the renewal
    [only] = registry.active()
    assert (only["id"], only["kind"], only["error_rate"]) == ("f", "error", 0.5)
    assert (active_gauge("latency"), active_gauge("error")) == (before_latency, before_error + 1)
    clock.now += 2
    assert registry.active() == []


def test_remove_one_and_clear_all(registry):
    registry.put("a", spec())
    registry.put("b", spec("brownout", latency_ms=5))
    registry.put("c", spec("blackhole"))
    assert registry.remove("a") is True
    assert registry.remove("a") is False
    assert registry.clear() == 2
    assert registry.active() == []
    assert registry.clear() == 0


def test_the_error_draw_is_a_synthetic_503_naming_the_fault(registry):
    registry.put("err-1", spec("error", error_rate=1.0))
    answer = asyncio.run(registry.before_attempt("http://a"))
    assert answer is not None and answer.status_code == 503
    assert answer.headers[FAULT_HEADER] == "err-1"


def injections(kind: str) -> float:
    return REGISTRY.get_sample_value("blackout_fault_injections_total", {"kind": kind}) or 0.0


def test_a_quiet_fault_acts_but_no_log_line_or_metric_names_it(registry, clock, caplog):
    """An exercise's fault: the team reads the instance's log and /metrics, so neither may name it."""
    before = {kind: (active_gauge(kind), injections(kind)) for kind in ("error", "latency")}
    with caplog.at_level(logging.DEBUG, logger="blackout.faults"):
        registry.put("hidden-1", spec("error", error_rate=1.0, quiet=True))
        registry.put("hidden-2", spec("latency", latency_ms=1, quiet=True, lease_s=1))
        answer = asyncio.run(registry.before_attempt("http://a"))
        assert [f["id"] for f in registry.active()] == ["hidden-1", "hidden-2"]  # the admin listing still has them
        assert {kind: (active_gauge(kind), injections(kind)) for kind in before} == before
        clock.now += 1  # hidden-2's lease runs out
        assert [f["id"] for f in registry.active()] == ["hidden-1"]
        assert registry.remove("hidden-1") is True
    assert answer is not None and answer.status_code == 503  # the symptom is the same
    assert FAULT_HEADER not in answer.headers and "hidden" not in answer.text and "fault" not in answer.text
    assert caplog.records == []
    assert {kind: (active_gauge(kind), injections(kind)) for kind in before} == before


def test_a_seed_makes_jitter_and_error_draws_reproducible(clock):
    def draws(seed: int) -> tuple[list[float], list[bool]]:
        registry = FaultRegistry(clock=clock)
        delays: list[float] = []

        async def record(seconds: float) -> None:
            delays.append(seconds)

        registry.sleep = record
        registry.put("slow", spec("latency", latency_ms=100, jitter_ms=50, seed=seed))
        registry.put("flaky", spec("error", error_rate=0.5, seed=seed))

        async def body() -> list[bool]:
            return [await registry.before_attempt("http://a") is not None for _ in range(50)]

        errors = asyncio.run(body())
        registry.clear()
        return delays, errors

    first, again, other = draws(7), draws(7), draws(8)
    assert first == again
    assert first != other
    delays, errors = first
    assert all(0.1 <= d <= 0.15 for d in delays) and len(set(delays)) > 1
    assert 0 < sum(errors) < 50


def test_a_plain_renewal_continues_the_random_sequence(registry):
    """Renewing every few seconds must not replay the same seeded draws over and over."""
    registry.put("flaky", spec("error", error_rate=0.5, seed=1))

    async def draw(n: int) -> list[bool]:
        return [await registry.before_attempt("http://a") is not None for _ in range(n)]

    first = asyncio.run(draw(40))
    registry.put("flaky", spec("error", error_rate=0.5, seed=1))
    assert asyncio.run(draw(40)) != first


def test_the_sweeper_expires_faults_on_an_idle_instance(registry, clock, monkeypatch):
    """No traffic, no lookups: the gauge must still drop when the lease runs out."""
    import services.common.faults.registry as registry_module

    monkeypatch.setattr(registry_module, "SWEEP_EVERY_S", 0.001)
    before = active_gauge("brownout")
    registry.put("idle", spec("brownout", latency_ms=1, lease_s=1))
    clock.now += 2

    async def body() -> None:
        sweeper = asyncio.create_task(registry.sweep_forever())
        deadline = asyncio.get_running_loop().time() + 5.0
        while active_gauge("brownout") != before and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.001)
        sweeper.cancel()

    asyncio.run(body())
    assert active_gauge("brownout") == before


def test_a_login_limit_lets_its_rate_through_and_says_how_long_the_rest_must_wait(registry, clock):
    assert registry.login_wait_s() is None  # nothing set: every login passes
    registry.put("shed", spec("login_limit", rate_per_s=2))
    assert [registry.login_wait_s() for _ in range(3)][:2] == [None, None]  # a second's worth of burst
    assert registry.login_wait_s() == pytest.approx(0.5)  # the next token comes at 2 a second
    clock.now += 0.5
    assert registry.login_wait_s() is None
    registry.remove("shed")
    assert [registry.login_wait_s() for _ in range(5)] == [None] * 5
