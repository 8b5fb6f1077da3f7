"""The control API fuzzed from its own OpenAPI (schemathesis): no call answers 5xx, and without the token no
call changes anything. A real Controller over a runtime that records what it was asked: nothing real is
powered off; a scenario run is recorded, not started (it would start users)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator

import pytest
import schemathesis
from fakes.control import recording_controller
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from chaos.control_api import create_control_app
from chaos.controller import Controller

TOKEN = "s3cret"
EXAMPLES = 15  # per operation and generation mode (fewer where fewer differ): ~200 calls, seconds
STREAMS = ("GET /events", "GET /room/events")  # endless with the token: tests/chaos/test_event_stream.py


@pytest.fixture
def api(tmp_path) -> Iterator[tuple[schemathesis.BaseSchema, Controller, threading.Event, list]]:
    controller = recording_controller(tmp_path / "runs")  # the exercise's leaderboard goes beside it
    runs: list[tuple] = []
    controller.start_run = lambda *args, **kw: runs.append((*args, kw)) or controller.run_state()
    shutdown = threading.Event()
    app = create_control_app(controller, TOKEN, shutdown)
    schema = schemathesis.openapi.from_dict(app.openapi())  # read here: /openapi.json needs the token too
    schema.app = app
    yield schema, controller, shutdown, runs
    controller.close()  # cancels the timers of faults injected with a duration


def fuzz(schema: schemathesis.BaseSchema, call: object, skip: tuple[str, ...] = ()) -> int:
    """Run ``call(case)`` on EXAMPLES cases of every operation, valid and invalid ones; how many ran."""
    done = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.label in skip:
            continue
        for mode in GenerationMode:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def one(case: schemathesis.Case) -> None:
                nonlocal done
                done += 1
                call(case)

            try:
                one()
            except Unsatisfiable:  # nothing invalid to send (no parameters, no body)
                assert mode is GenerationMode.NEGATIVE, operation.label
    return done


def snapshot(controller: Controller, shutdown: threading.Event, runs: list) -> dict:
    runtime = controller.runtime
    return copy.deepcopy(
        {
            "power": runtime.powered(),
            "killed": runtime.killed,
            "profiles": runtime.profiles,
            "faults": controller.injector.active_ids(),
            "shutdown": shutdown.is_set(),
            "runs": runs,
            "journal": controller.journal.read(),
        }
    )


def test_without_the_token_no_call_changes_anything(api):
    schema, controller, shutdown, runs = api
    before = snapshot(controller, shutdown, runs)
    statuses: set[int] = set()

    def call(case: schemathesis.Case) -> None:
        for credentials in (
            {},
            {"headers": {"Authorization": "Bearer wrong"}},
            {"cookies": {"blackout_control_80": "x"}},
        ):
            response = case.call(**credentials)
            statuses.add(response.status_code)

    assert fuzz(schema, call) > 100
    assert statuses == {401}
    assert snapshot(controller, shutdown, runs) == before


def test_with_the_token_no_call_answers_a_server_error(api):
    schema, controller, shutdown, runs = api
    statuses: set[int] = set()

    def call(case: schemathesis.Case) -> None:
        response = case.call(headers={"Authorization": f"Bearer {TOKEN}"})
        statuses.add(response.status_code)
        case.validate_response(response, checks=[not_a_server_error])

    assert fuzz(schema, call, skip=STREAMS) > 100
    assert max(statuses) < 500 and {200, 404, 422} <= statuses  # fuzzed, not refused wholesale
    assert 401 not in statuses  # the token was taken everywhere
    # an exercise the fuzzer started ends (its event watcher with it)
    TestClient(schema.app).post("/exercise/end", headers={"Authorization": f"Bearer {TOKEN}"})
