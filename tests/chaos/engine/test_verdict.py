"""The verdict: which checks and findings make a run deviate (one pure function)."""

from __future__ import annotations

from dataclasses import replace

from chaos.engine.hypothesis import Check, ProbeResult
from chaos.engine.verdict import Evidence, judge


def result(status: str) -> ProbeResult:
    return ProbeResult("feed success >= 90%", status, None if status == "no data" else 0.5, ">= 0.9", 0)


def evidence(before: str, during: list[str], recovered_after: float | None, status: str = "completed") -> Evidence:
    return Evidence(
        status,
        Check(0, "before", (0, 1), [result(before)]),
        [Check(1, "during", (0, 1), [result(s)]) for s in during],
        None,
        {"removed_at": 2, "within_s": 15, "recovered_after_s": recovered_after},
        [],
    )


def judged(before: str, during: list[str], recovered_after: float | None, tmp_path=None) -> list[str]:
    return list(judge(evidence(before, during, recovered_after)).reasons)


def test_a_run_that_held_throughout_has_no_reasons(tmp_path):
    assert judged("held", ["held", "no data", "held"], 3.0, tmp_path) == []


def test_one_deviated_check_during_the_faults_is_enough(tmp_path):
    assert judged("held", ["held", "deviated"], 3.0, tmp_path)[0].startswith("deviated during the faults at 1 of 2")


def test_no_steady_state_before_the_fault_proves_nothing(tmp_path):
    assert judged("no data", ["held"], 3.0, tmp_path)[0].startswith("no steady state before the first fault")


def test_late_or_no_recovery_deviates(tmp_path):
    assert "not recovered within 15s" in judged("held", [], 20.0, tmp_path)[0]
    assert "never" in judged("held", [], None, tmp_path)[0]


def test_findings_of_the_walk_the_run_and_the_audit_join_the_reasons_in_order():
    verdict = judge(evidence("held", ["deviated"], 3.0), ["stopped early at 5s", "audit: not done: x"])
    assert verdict.deviated
    assert verdict.reasons[0].startswith("deviated during the faults") and verdict.reasons[1:] == (
        "stopped early at 5s",
        "audit: not done: x",
    )


def test_a_run_that_did_not_complete_deviates_even_without_reasons():
    assert judge(evidence("held", ["held"], 3.0)).deviated is False
    assert judge(evidence("held", ["held"], 3.0, status="interrupted")).deviated is True


def test_a_run_whose_load_stopped_has_no_verdict_on_its_checks():
    stopped = replace(evidence("held", ["deviated"], None), status="load-stopped", load_stopped_at=42.0)
    verdict = judge(stopped, ["audit: not done: x"])
    assert verdict.deviated and verdict.reasons[0].startswith("load stopped at 42s into the scenario")
    assert verdict.reasons[1:] == ("audit: not done: x",)  # the checks after it saw no users: not reasons


def test_the_reason_names_every_probe_that_deviated_at_its_worst():
    """The first deviated check need not show every symptom: 0-view displays come with feeds answered seconds
    after the first failures. The reason names each probe that deviated, at its worst, and how often."""

    def zero_views(n: int) -> ProbeResult:
        return ProbeResult("zero_view_displays <= 0", "deviated" if n else "held", n, "<= 0", 10, str(n))

    def success(rate: float) -> ProbeResult:
        return ProbeResult("feed success >= 90%", "deviated", rate, ">= 0.9", 10, f"{rate:.0%}")

    during = [
        Check(1, "during", (0, 1), [success(0.5), zero_views(0)]),
        Check(2, "during", (1, 2), [success(0.2), zero_views(40)]),
        Check(3, "during", (2, 3), [success(0.4), zero_views(10)]),
    ]
    verdict = judge(Evidence("completed", None, during, None, None, []))
    assert verdict.reasons == (
        "deviated during the faults at 3 of 3 checks, first: feed success >= 90% was 50%; "
        "worst: feed success >= 90% was 20% (3 checks); zero_view_displays <= 0 was 40 (2 checks)",
    )
