"""The verdict: which checks make a run deviate."""
from __future__ import annotations

from chaos.engine.hypothesis import Check, ProbeResult
from chaos.engine.journal_doc import JournalDoc
from chaos.engine.scenario import load_scenario


def result(status: str) -> ProbeResult:
    return ProbeResult("feed success >= 90%", status, None if status == "no data" else 0.5, ">= 0.9", 0)


def judged(before: str, during: list[str], recovered_after: float | None, tmp_path) -> list[str]:
    doc = JournalDoc(tmp_path, load_scenario("dc-power-loss"), "naive", 1)
    doc.before = Check(0, "before", (0, 1), [result(before)])
    doc.during = [Check(1, "during", (0, 1), [result(s)]) for s in during]
    doc.start_recovery(2, 15)
    doc.recovery["recovered_after_s"] = recovered_after
    doc.judge()
    return doc.reasons


def test_a_run_that_held_throughout_has_no_reasons(tmp_path):
    assert judged("held", ["held", "no data", "held"], 3.0, tmp_path) == []


def test_one_deviated_check_during_the_faults_is_enough(tmp_path):
    assert judged("held", ["held", "deviated"], 3.0, tmp_path)[0].startswith("deviated during the faults at 1 of 2")


def test_no_steady_state_before_the_fault_proves_nothing(tmp_path):
    assert judged("no data", ["held"], 3.0, tmp_path)[0].startswith("no steady state before the first fault")


def test_late_or_no_recovery_deviates(tmp_path):
    assert "not recovered within 15s" in judged("held", [], 20.0, tmp_path)[0]
    assert "never" in judged("held", [], None, tmp_path)[0]
