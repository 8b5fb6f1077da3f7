"""The composition root on real processes: built in order, torn down in reverse, every step of the teardown running
even when one fails, and nothing left behind."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

import pytest
from fakes.processes import wait_all_gone

from chaos.control_client import CONTROL_FILE
from chaos.journal import EventName
from chaos.runtime.base import RuntimeError_
from chaos.stack import Stack
from chaos.topology import Topology, load_topology
from services.common.errors import BlackoutError
from services.common.policy import load_profile

PROJECT = Path(__file__).resolve().parents[2]
NAIVE = PROJECT / "profiles" / "naive.yaml"


def fragile() -> Topology:
    return load_topology(PROJECT / "topologies" / "fragile.yaml").with_any_ports()


def refuse(what: str) -> None:
    raise BlackoutError(f"{what} would not stop")


def test_the_teardown_rolls_every_fault_back_and_brings_everything_down_though_steps_fail(tmp_path):
    runs = tmp_path / "runs"
    run_dir = runs / "up"
    run_dir.mkdir(parents=True)
    stack = Stack(runs, serve=True, runs=True)
    journal = stack.open(run_dir)
    try:
        stack.power_up(fragile(), NAIVE)
        stack.defer(lambda: refuse("the load"))  # torn down after the rollbacks, before the runtime
        stack.arm(load_profile(NAIVE), random.Random(1))
        stack.defer(lambda: refuse("a watcher"))  # the first step of the teardown
        assert stack.controller is not None and stack.server is not None and stack.server.published
        stack.controller.power("dc-east", "power_off")
        latency = stack.controller.inject({"latency": {"from": "dc-west", "to": "dc-east", "ms": 300}})
        assert (runs / CONTROL_FILE).exists() and stack.runtime is not None
        assert stack.runtime.powered() == {"dc-east": False, "dc-west": True}
    except BaseException:
        with contextlib.suppress(BlackoutError):
            stack.close()
        raise

    with pytest.raises(BlackoutError, match="would not stop"):
        stack.close()

    events = journal.read()
    rolled_back = {e["id"] for e in events if e["event"] == EventName.FAULT_OFF}
    assert rolled_back == {"power-off-1", latency["id"]}
    assert [(e["dc"], e["healthy"]) for e in events if e["event"] == EventName.POWER_ON] == [("dc-east", True)]
    assert {r["status"] for r in stack.rollbacks} == {"succeeded"} and len(stack.rollbacks) == 2
    assert not (runs / CONTROL_FILE).exists()  # the control API stopped
    pids = [p for e in events for p in e.get("pids", {}).values()]
    assert len(pids) >= 8 + 5 and wait_all_gone(pids, timeout_s=10) == []  # the first 8, then dc-east's again
    assert all(s["state"] == "powered-off" for s in stack.runtime.status().values())
    assert stack.close() == stack.rollbacks  # a second teardown has nothing left to do


def test_a_runtime_that_fails_half_way_up_is_torn_down_by_the_stack(tmp_path):
    broken = tmp_path / "broken-profile.yaml"
    broken.write_text("name: broken\ndefault: {timeout_s: -1}\n")  # every instance exits while starting
    stack = Stack(tmp_path / "runs", serve=True)
    stack.open(tmp_path / "run")
    with stack, pytest.raises(RuntimeError_, match="exited with code"):
        stack.power_up(fragile(), broken)
    assert stack.runtime is not None and stack.injector is None and stack.server is None  # nothing built after it
    assert all(s["state"] == "powered-off" for s in stack.runtime.status().values())
    assert not (tmp_path / "runs" / CONTROL_FILE).exists()


def test_a_stack_is_built_in_order(tmp_path):
    stack = Stack(tmp_path)
    with pytest.raises(RuntimeError, match="open the stack's run directory first"):
        stack.power_up(fragile(), NAIVE)
    stack.open(tmp_path)
    with pytest.raises(RuntimeError, match="power the stack up first"):
        stack.arm(load_profile(NAIVE), random.Random(1))
    assert stack.close() == []
