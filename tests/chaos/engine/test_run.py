"""The verdict follows the hypothesis: naive deviates in a power loss, resilient holds; journal.json has it all."""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import pytest
from fakes.runtime import RecordingRuntime

from chaos import commands
from chaos.engine.run import RunResult
from chaos.faults.injector import FaultInjector
from chaos.faults.actions import parse_action
from chaos.journal import Journal
from loadtest.control import CONTROL_FILE, read_control


def doc(result: RunResult) -> dict:
    return json.loads((result.run_dir / "journal.json").read_text())


def test_the_naive_profile_deviates_and_says_why(naive_result):
    journal = doc(naive_result)
    assert naive_result.deviated and journal["deviated"] and journal["status"] == "completed"
    assert journal["steady_states"]["before"]["steady_state_met"] is True  # healthy before the fault
    assert any(c["steady_state_met"] is False for c in journal["steady_states"]["during"])
    assert any(r.startswith("deviated during the faults") for r in journal["reasons"])
    assert journal["seed"] == 7 and journal["experiment"]["title"]


def test_the_resilient_profile_holds_and_recovers_in_time(resilient_result):
    journal = doc(resilient_result)
    assert not resilient_result.deviated and journal["deviated"] is False, journal["reasons"]
    recovery = journal["recovery"]
    assert recovery["recovered_after_s"] is not None and recovery["recovered_after_s"] <= recovery["within_s"]
    assert journal["steady_states"]["after"]["steady_state_met"] is True


def test_the_scenarios_load_reaches_the_load_generator(naive_result):
    control = read_control(naive_result.run_dir / CONTROL_FILE)
    assert (control.users, control.spawn_rate) == (10, 10)  # tests/fakes/scenarios.py: short_power_loss


def test_every_action_is_journaled_with_its_outcome(naive_result):
    journal = doc(naive_result)
    off, on = journal["run"]
    assert off["activity"] == {"power_off": "dc-east"} and off["status"] == "succeeded"
    assert off["output"]["seconds"] < 1 and len(off["output"]["instances"]) == 5
    assert on["output"]["healthy"] is True and on["end"] >= on["start"]
    assert journal["rollbacks"] == []  # the timeline restored power itself: nothing left to undo
    events = [e["event"] for e in Journal(naive_result.run_dir).read()]
    assert events.count("hypothesis") >= 3 and "recovered" in events


@pytest.mark.parametrize(("deviated", "code"), [(True, 1), (False, 0)])
def test_the_exit_code_is_the_verdict(monkeypatch, tmp_path, deviated, code):
    monkeypatch.setattr(commands, "run_scenario", lambda options: RunResult(tmp_path, deviated, []))
    args = argparse.Namespace(scenario="dc-power-loss", profile=Path("p.yaml"), topology=None, seed=1, users=None, think=None, runtime="local",
                              runs=tmp_path)  # fmt: skip
    assert commands.cmd_run(args) == code


def test_the_same_seed_picks_the_same_victim(tmp_path):
    def victim(seed: int) -> str:
        runtime = RecordingRuntime()
        injector = FaultInjector(runtime, Journal(tmp_path), random.Random(seed))
        injector.apply(parse_action({"kill_instance": "dc-west"}, "test", "body"))
        return next(iter(runtime.killed))

    assert victim(11) == victim(11)
    assert len({victim(seed) for seed in range(12)}) > 1  # the seed decides, not the order of the names
