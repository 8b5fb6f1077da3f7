"""End to end: runs on a borrowed stack (what an exercise or POST /runs does) are audited too. The stack is up
under naive, as `blackout up` leaves it; two runs of the resilient profile borrow it one after the other. The
services' databases are in the stack's run directory, which each run's journal names; each audit judges only
the views its own run wrote, though the logs hold both runs'. The module takes ~50 s."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from fakes.scenarios import variant
from rich.console import Console

from chaos.audit.ledger import view_writes
from chaos.cli import main
from chaos.engine.fit import TOPOLOGIES
from chaos.engine.run import PROJECT_ROOT, RunOptions, RunResult
from chaos.journal import EventName, Journal, new_run_dir
from chaos.runtime.local import LocalRuntime
from chaos.stack import run_scenario
from chaos.topology import load_topology

PROFILES = PROJECT_ROOT / "profiles"
HYPOTHESIS = {"window": "5s", "min_requests": 5, "probes": [{"success_rate": {"action": "feed", "min": 0.5}}]}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, RunResult, RunResult]:
    root = tmp_path_factory.mktemp("borrowed")
    power_loss = variant(
        root,
        "dc-power-loss",
        load={"users": 6, "spawn_rate": 6},
        duration="16s",
        timeline=[{"at": "4s", "power_off": "dc-east"}, {"at": "9s", "power_on": "dc-east"}],
        hypothesis=HYPOTHESIS,
    )
    stack_dir = new_run_dir(root / "runs", "up-resilient")
    topology = load_topology(TOPOLOGIES / "resilient.yaml").with_any_ports()
    with LocalRuntime(topology, stack_dir, profile=PROFILES / "naive.yaml", journal=Journal(stack_dir)) as stack:
        results = [
            run_scenario(
                RunOptions(
                    scenario=power_loss,
                    profile=PROFILES / "resilient.yaml",
                    seed=seed,
                    runs_root=root / "runs",
                    runtime=stack,
                    observe=False,
                ),
                Console(record=True, width=160),
            )
            for seed in (3, 4)
        ]
    return stack_dir, results[0], results[1]


def audit_of(result: RunResult) -> dict:
    return json.loads((result.run_dir / "audit.json").read_text())


def test_each_borrowed_run_is_audited_in_the_stacks_databases(runs):
    stack_dir, first, second = runs
    for result in (first, second):
        lent = [e for e in Journal(result.run_dir).read() if e["event"] == EventName.BORROWED]
        assert [e["stack_dir"] for e in lent] == [str(stack_dir.resolve())]
        assert not (result.run_dir / "data").exists()  # the run itself has no databases: the stack's are read
        audit = audit_of(result)
        assert audit["stack_dir"] == str(stack_dir.resolve()) and audit["writes"]["acked"] > 0
        # its own profile.yaml, then the stack's switch to it as the run borrowed it (not the switch back after)
        assert audit["profiles"] == ["resilient", "resilient"] and audit["design"] == "converge"
        for dc in audit["views"]:
            assert dc["acked_present"] == audit["writes"]["acked"] and dc["lost_acked"] == 0, dc
        assert not [r for r in result.reasons if r.startswith(("data:", "audit:"))], result.reasons


def test_a_borrowed_run_judges_only_its_own_views_though_the_logs_hold_others(runs, capsys):
    stack_dir, first, second = runs
    with closing(sqlite3.connect(stack_dir / "data" / "views-west.sqlite3")) as conn:
        logged = {r[0] for r in conn.execute("SELECT event_id FROM events WHERE origin != 'seed'")}
    mine, theirs = set(view_writes(first.run_dir)), set(view_writes(second.run_dir))
    assert logged & mine and logged & theirs and logged <= mine | theirs  # both runs' views, nobody else's
    # the first run's audit again, now that the second run's views are in the same logs too
    assert main(["audit", str(first.run_dir)]) == 0, capsys.readouterr().out
    for audit in (audit_of(first), audit_of(second)):
        for dc in audit["views"]:  # the other run's views would be above the range, counted twice
            assert dc["above_range"] == dc["double_counted"] == dc["unexpected"] == 0, dc
