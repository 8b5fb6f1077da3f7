"""The stub gateways answer every route the locustfile calls with a body its validators accept, and stop."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from fakes.processes import wait_all_gone
from support.stub_gateway import StubGateways, stub_gateways

from loadtest import records

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _call(base_url: str, method: str, path: str) -> tuple[int, Any, str | None]:
    request = urllib.request.Request(
        base_url + path,
        method=method,
        data=b'{"x":1}' if method == "POST" else None,
        headers={"Content-Type": "application/json"},
    )
    try:
        with _NO_PROXY.open(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read()), answer.headers.get("X-Blackout-Calls")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), exc.headers.get("X-Blackout-Calls")


ROUTES: list[tuple[str, str, int, Callable[[Any], str | None]]] = [
    ("POST", "/login", 200, records.validate_login),
    ("GET", "/feed?limit=10", 200, records.validate_feed),
    ("POST", "/videos/video-0042/view", 200, records.validate_view),
    ("POST", "/videos", 201, records.validate_upload),
    ("GET", "/me/earnings", 200, records.validate_earnings),
]


@pytest.mark.timeout(60)
def test_every_route_the_users_call_is_answered_well_formed_on_every_gateway() -> None:
    with stub_gateways(("dc-east", "dc-west")) as stub:
        assert set(stub.urls) == {"dc-east", "dc-west"}
        for url in stub.urls.values():
            for method, path, status, validate in ROUTES:
                got, body, calls = _call(url, method, path)
                assert (got, validate(body), calls) == (status, None, "1"), (method, path, body)
            assert _call(url, "GET", "/nowhere")[0] == 404
            assert _call(url, "GET", "/videos/video-0042/view")[0] == 404  # the view route takes POST only
        login = _call(stub.urls["dc-east"], "POST", "/login")[1]
        assert login["expires_at"] > 4e9  # a session never expires during a benchmark
    assert wait_all_gone([stub.pid], 10) == []


@pytest.mark.timeout(60)
def test_the_stub_process_is_stopped_when_the_caller_fails() -> None:
    started: list[StubGateways] = []
    with pytest.raises(KeyboardInterrupt), stub_gateways(("dc-east",)) as stub:
        started.append(stub)
        raise KeyboardInterrupt  # Ctrl-C in the middle of a benchmark
    assert wait_all_gone([started[0].pid], 10) == []
