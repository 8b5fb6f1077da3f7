"""The verdict follows the hypothesis: naive deviates in a power loss, resilient holds; journal.json has it all."""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest
from fakes.processes import alive
from fakes.runtime import RecordingRuntime
from fakes.scenarios import short_power_loss, variant
from rich.console import Console

from chaos import loadgen, scenario_commands
from chaos.engine.run import RunOptions, RunResult
from chaos.engine.scenario import load_scenario
from chaos.faults.actions import parse_action
from chaos.faults.injector import FaultInjector
from chaos.journal import Journal
from chaos.observability.postmortem import verdict_and_audit
from chaos.rundir import LOAD_CONTROL_FILE, REQUESTS_FILE, SCENARIO_FILE
from chaos.stack import run_scenario
from loadtest.control import read_control
from loadtest.requests_reader import read_all

PROJECT = Path(__file__).resolve().parents[3]


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
    control = read_control(naive_result.run_dir / LOAD_CONTROL_FILE)
    assert (control.users, control.spawn_rate) == (10, 10)  # tests/fakes/scenarios.py: short_power_loss


def test_the_runs_copy_of_its_scenario_loads_back_as_the_same_scenario(naive_result, tmp_path):
    """What a trainer or `blackout run <run>/scenario.yaml` reads must be the scenario that ran (with users, the
    copy used to name `of: actions`, which loading refused)."""
    copy = load_scenario(naive_result.run_dir / SCENARIO_FILE)
    original = load_scenario(short_power_loss(tmp_path))  # what the fixture ran: fakes/scenarios.py
    assert copy.load.users == 10
    assert copy.model_dump(exclude={"name"}) == original.model_dump(exclude={"name"})  # a name is its file's stem


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
    monkeypatch.setattr(scenario_commands, "run_scenario", lambda options: RunResult(tmp_path, deviated, []))
    args = argparse.Namespace(
        scenario="dc-power-loss",
        profile=Path("p.yaml"),
        topology=None,
        seed=1,
        users=None,
        think=None,
        runtime="local",
        any_ports=False,
        runs=tmp_path,
    )
    assert scenario_commands.cmd_run(args) == code


def test_the_same_seed_picks_the_same_victim(tmp_path):
    def victim(seed: int) -> str:
        runtime = RecordingRuntime()
        injector = FaultInjector(runtime, Journal(tmp_path), random.Random(seed))
        injector.apply(parse_action({"kill_instance": "dc-west"}, "test", "body"))
        return next(iter(runtime.killed))

    assert victim(11) == victim(11)
    assert len({victim(seed) for seed in range(12)}) > 1  # the seed decides, not the order of the names


def quiet_scenario(tmp_path: Path, users: int, spawn_rate: float, duration: int) -> Path:
    """A short scenario whose one fault is mild (users stay served): what is measured is the load itself."""
    return variant(
        tmp_path,
        "dc-power-loss",
        load={"users": users, "spawn_rate": spawn_rate},
        duration=f"{duration}s",
        timeline=[{"at": "2s", "latency": {"from": "dc-west", "to": "dc-east", "ms": 5}, "for": "3s"}],
        hypothesis={"window": "3s", "min_requests": 3, "probes": [{"success_rate": {"action": "feed", "min": 0.5}}]},
    )


def run_quietly(tmp_path: Path, scenario: Path) -> RunResult:
    options = RunOptions(
        scenario=scenario,
        profile=PROJECT / "profiles" / "resilient.yaml",
        seed=3,
        runs_root=tmp_path / "runs",
        any_ports=True,
        observe=False,
    )
    return run_scenario(options, Console(record=True, width=120))


def test_users_stay_through_the_scenario_when_their_ramp_outlasts_the_margin(tmp_path, monkeypatch):
    """1,000 users at 5/s arrive over 200 s; the load generator's limit used to be the scenario + 120 s, so
    they left as the last one came in. Here the same at small scale: a 10-s ramp, a 5-s margin."""
    monkeypatch.setattr(loadgen, "LIMIT_MARGIN_S", 5.0)
    monkeypatch.setattr(loadgen, "LOGIN_WAIT_S", 5.0)
    duration = 12
    result = run_quietly(tmp_path, quiet_scenario(tmp_path, users=10, spawn_rate=1.0, duration=duration))
    journal = doc(result)
    assert journal["status"] == "completed" and journal["load_stopped_at_s"] is None, journal["reasons"]
    assert read_control(result.run_dir / LOAD_CONTROL_FILE).max_seconds >= 10 + duration  # the ramp, then the scenario
    events = Journal(result.run_dir).read()
    walk_start = next(e["t"] for e in events if e["event"] == "phase")
    started = [r.t for r in read_all(result.run_dir / REQUESTS_FILE)]
    assert max(started) >= walk_start + duration - 2, "the users were gone before the scenario ended"
    assert "load-stopped" not in {e["event"] for e in events}


def test_a_run_whose_load_died_says_so_instead_of_a_verdict(tmp_path):
    scenario = quiet_scenario(tmp_path, users=4, spawn_rate=4.0, duration=20)
    killed: list[int] = []

    def kill_the_load_once_the_walk_began() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            runs = list((tmp_path / "runs").glob("*/journal.jsonl"))
            events = Journal(runs[0].parent).read() if runs else []
            pid = next((e["pid"] for e in events if e["event"] == "load-start"), None)
            if pid is not None and any(e["event"] == "phase" for e in events):
                os.killpg(pid, signal.SIGKILL)  # locust's process group: the one the load generator made
                killed.append(pid)
                return
            time.sleep(0.2)  # poll interval

    killer = threading.Thread(target=kill_the_load_once_the_walk_began, daemon=True)
    killer.start()
    result = run_quietly(tmp_path, scenario)
    killer.join(timeout=5)
    assert killed, "the run never started its load"
    journal = doc(result)
    assert journal["status"] == "load-stopped" and journal["load_stopped_at_s"] < 20
    assert journal["reasons"][0].startswith(f"load stopped at {journal['load_stopped_at_s']:g}s")
    assert not [r for r in journal["reasons"] if "no data" in r or r.startswith("deviated")], journal["reasons"]
    assert f"**No verdict**: the load stopped at {journal['load_stopped_at_s']:g} s" in "\n".join(
        verdict_and_audit(result.run_dir)
    )
    assert not alive(killed)
