"""The controller's own timers, against a runtime that records what it was asked (no processes)."""

from __future__ import annotations

import random
import time

import pytest
from fakes.runtime import RecordingRuntime

from chaos.controller import Controller
from chaos.events import EventBus
from chaos.faults.injector import FaultInjector
from chaos.journal import Journal
from services.common.errors import ConfigError, ConflictError, UsageError


def test_a_timed_fault_never_removes_a_later_fault_that_reuses_its_id(tmp_path):
    runtime, journal = RecordingRuntime(), Journal(tmp_path)
    injector = FaultInjector(runtime, journal, random.Random(1))
    controller = Controller(runtime, injector, journal, EventBus(), tmp_path)
    try:
        controller.inject({"kill_instance": "auth-east", "id": "k", "for": "0.2s"})
        controller.remove("k")  # by hand, before its time
        controller.inject({"kill_instance": "auth-east", "id": "k"})  # a new fault under the same id, untimed
        controller.inject({"kill_instance": "views-east", "id": "later", "for": "0.6s"})
        deadline = time.monotonic() + 10
        while not any(e["event"] == "fault-off" and e["id"] == "later" for e in journal.read()):
            assert time.monotonic() < deadline, "the 0.6-s timer never fired"
            time.sleep(0.02)
        # the 0.2-s timer of the first "k" has fired by now: the second "k" must be untouched
        assert injector.active_ids() == ["k"] and "auth-east" in runtime.killed
        assert [e["id"] for e in journal.read() if e["event"] == "fault-off"] == ["k", "later"]
    finally:
        controller.close()
        injector.close()


def test_an_action_on_a_target_the_stack_lacks_is_refused_naming_the_field(tmp_path):
    runtime, journal = RecordingRuntime(), Journal(tmp_path)
    injector = FaultInjector(runtime, journal, random.Random(1))
    controller = Controller(runtime, injector, journal, EventBus(), tmp_path)
    try:
        with pytest.raises(ConfigError, match=r"^fault: field 'body.power_on.dc': data center 'dc-mars': unknown"):
            controller.inject({"power_on": {"dc": "dc-mars", "boot_order": ["views"]}})
        with pytest.raises(UsageError, match="flap needs a scenario run"):
            controller.inject({"flap": {"dc": "dc-east", "times": 1, "off_for": "1s", "on_for": "1s"}})
        assert runtime.power == {"dc-east": True, "dc-west": True} and injector.active() == []
    finally:
        controller.close()
        injector.close()


def test_a_stack_running_its_own_scenario_starts_no_other_run_on_it(tmp_path):
    """`blackout run` serves a controller without a runner: a run started over HTTP would share its stack."""
    runtime, journal = RecordingRuntime(), Journal(tmp_path)
    injector = FaultInjector(runtime, journal, random.Random(1))
    controller = Controller(runtime, injector, journal, EventBus(), tmp_path)
    try:
        with pytest.raises(ConflictError, match="running its own scenario"):
            controller.start_run("dc-power-loss", None, 1, 2)
        assert controller.run_state() == {"running": False}
    finally:
        controller.close()
        injector.close()
