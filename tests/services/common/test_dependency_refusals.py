"""What get_json/post_json make of a dependency's 4xx: a refusal with its status and reason, never "unavailable"."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from services.common.errors import DependencyError, DependencyRejected
from services.common.http import DependencyClient
from services.common.policy import DependencyPolicy, Profile, ProfileHolder


def client_answering(response: httpx.Response) -> DependencyClient:
    holder = ProfileHolder(Profile(name="test", default=DependencyPolicy()))
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: response))
    return DependencyClient("refusals", ["http://dep"], holder, http)


def post(client: DependencyClient) -> object:
    return asyncio.run(client.post_json("/x", {"a": 1}))


def test_a_4xx_carries_its_status_and_the_dependencys_reason():
    with pytest.raises(DependencyRejected) as info:
        post(client_answering(httpx.Response(401, json={"detail": "unknown user or wrong password"})))
    assert (info.value.status, info.value.detail) == (401, "unknown user or wrong password")
    assert "refused the request (401: unknown user or wrong password)" in str(info.value)
    assert not isinstance(info.value, DependencyError)  # callers' outage fallbacks must not swallow it


def test_a_validation_error_is_summarised_field_by_field():
    errors = [{"loc": ["body", "username"], "msg": "String should match pattern"}, {"loc": [], "msg": "odd"}]
    with pytest.raises(DependencyRejected) as info:
        post(client_answering(httpx.Response(422, json={"detail": errors})))
    assert info.value.detail == "body.username: String should match pattern; odd"


def test_a_4xx_without_json_keeps_its_text():
    with pytest.raises(DependencyRejected) as info:
        post(client_answering(httpx.Response(404, text="Not Found")))
    assert (info.value.status, info.value.detail) == (404, "Not Found")


def test_a_429_is_load_shed_so_it_counts_as_unavailable():
    with pytest.raises(DependencyError) as info:
        post(client_answering(httpx.Response(429, json={"detail": "overloaded"})))
    assert info.value.outcome == "shed" and "overloaded" in info.value.detail


def test_a_2xx_that_is_not_json_is_an_error():
    with pytest.raises(DependencyError) as info:
        post(client_answering(httpx.Response(200, text="<html>")))
    assert info.value.outcome == "error"
