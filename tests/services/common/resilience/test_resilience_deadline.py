from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.common.resilience import (
    DEADLINE_HEADER,
    DeadlineExceeded,
    DeadlineMiddleware,
    check,
    outgoing_headers,
    parse_header,
    remaining,
    set_deadline,
    set_deadline_from_header,
)

T = TypeVar("T")


def fresh(fn: Callable[[], T]) -> T:
    """Run in an empty copy of the context so one test's deadline cannot leak into another."""
    return contextvars.Context().run(fn)


def test_header_name():
    assert DEADLINE_HEADER == "X-Blackout-Deadline-Ms"


@pytest.mark.parametrize("value, ms", [("250", 250.0), (" 1500 ", 1500.0), ("0", 0.0), ("-3", -3.0), ("12.5", 12.5)])
def test_parse_header_accepts_numbers(value, ms):
    assert parse_header(value) == ms


@pytest.mark.parametrize(
    "value, reason", [("", "empty"), ("soon", "not a number"), ("nan", "finite"), ("inf", "finite")]
)
def test_parse_header_rejects_with_a_reason(value, reason):
    with pytest.raises(ValueError, match=reason):
        parse_header(value)


def test_without_a_deadline_nothing_is_propagated_or_enforced():
    def body() -> None:
        assert remaining() is None
        assert outgoing_headers() == {}
        check()  # no deadline: never raises

    fresh(body)


def test_remaining_budget_counts_down_on_the_clock(clock):
    def body() -> None:
        set_deadline_from_header("250", clock=clock)
        assert remaining(clock=clock) == pytest.approx(0.25)
        clock.advance(0.1004)
        assert remaining(clock=clock) == pytest.approx(0.1496)
        # floored: never promise the next hop more than we have
        assert outgoing_headers(clock=clock) == {DEADLINE_HEADER: "149"}
        check(clock=clock)
        clock.advance(0.1496)
        with pytest.raises(DeadlineExceeded):
            check(clock=clock)
        clock.advance(1.0)
        assert outgoing_headers(clock=clock) == {DEADLINE_HEADER: "0"}

    fresh(body)


def test_outgoing_budget_is_not_shaved_by_float_noise(clock):
    def body() -> None:
        set_deadline_from_header("800", clock=clock)
        assert outgoing_headers(clock=clock) == {DEADLINE_HEADER: "800"}

    fresh(body)


def test_set_deadline_from_header_rejects_invalid_values(clock):
    def body() -> None:
        with pytest.raises(ValueError):
            set_deadline_from_header("tomorrow", clock=clock)
        assert remaining(clock=clock) is None

    fresh(body)


def test_set_deadline_starts_a_budget_and_token_resets_it(clock):
    def body() -> None:
        token = set_deadline(2.0, clock=clock)
        assert remaining(clock=clock) == pytest.approx(2.0)
        token.var.reset(token)
        assert remaining(clock=clock) is None

    fresh(body)


def make_app(clock, enabled: Callable[[], bool]) -> tuple[FastAPI, list[str]]:
    app = FastAPI()
    hits: list[str] = []

    @app.get("/async")
    async def async_endpoint() -> dict[str, Any]:
        hits.append("async")
        return {"remaining": remaining(clock=clock), "out": outgoing_headers(clock=clock)}

    @app.get("/sync")
    def sync_endpoint() -> dict[str, Any]:  # runs in the thread pool: the context must follow
        hits.append("sync")
        return {"remaining": remaining(clock=clock)}

    app.add_middleware(DeadlineMiddleware, enabled=enabled, clock=clock)
    return app, hits


def test_middleware_sets_the_deadline_for_the_request(clock):
    app, hits = make_app(clock, lambda: True)
    with TestClient(app) as client:
        body = client.get("/async", headers={DEADLINE_HEADER: "1500"}).json()
        assert body["remaining"] == pytest.approx(1.5)
        assert body["out"] == {DEADLINE_HEADER: "1500"}
        assert client.get("/sync", headers={DEADLINE_HEADER: "800"}).json()["remaining"] == pytest.approx(0.8)
        assert client.get("/async").json()["remaining"] is None  # no header: no deadline
    assert hits == ["async", "sync", "async"]


@pytest.mark.parametrize("value", ["0", "-20"])
def test_middleware_answers_504_when_the_budget_is_spent(clock, value):
    app, hits = make_app(clock, lambda: True)
    with TestClient(app) as client:
        response = client.get("/async", headers={DEADLINE_HEADER: value})
    assert response.status_code == 504
    assert response.json() == {"detail": "deadline exceeded before work started"}
    assert hits == []


@pytest.mark.parametrize("value, reason", [("soon", "not a number"), ("nan", "not a finite number")])
def test_middleware_answers_400_for_invalid_values(clock, value, reason):
    app, hits = make_app(clock, lambda: True)
    with TestClient(app) as client:
        response = client.get("/async", headers={DEADLINE_HEADER: value})
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert DEADLINE_HEADER in detail and reason in detail
    assert hits == []


def test_middleware_ignores_the_header_when_disabled_and_follows_the_switch_live(clock):
    flag = {"on": False}
    app, hits = make_app(clock, lambda: flag["on"])
    with TestClient(app) as client:
        off = client.get("/async", headers={DEADLINE_HEADER: "0"})
        assert off.status_code == 200 and off.json()["remaining"] is None
        flag["on"] = True
        assert client.get("/async", headers={DEADLINE_HEADER: "0"}).status_code == 504
    assert hits == ["async"]


def test_middleware_restores_the_previous_context_after_the_request(clock):
    seen: list[float | None] = []

    async def app(scope, receive, send) -> None:
        seen.append(remaining(clock=clock))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def main() -> None:
        mw = DeadlineMiddleware(app, lambda: True, clock=clock)
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": "/", "headers": [(b"x-blackout-deadline-ms", b"300")]}
        await mw(scope, receive, send)
        assert seen == [pytest.approx(0.3)]
        assert sent[0]["status"] == 204
        assert remaining(clock=clock) is None  # reset once the request is done

    fresh(lambda: asyncio.run(main()))
