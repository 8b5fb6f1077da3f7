"""Walking a plan in time: steps run one after another on their own thread while the main loop ticks the
hypothesis checks, marks the phases (baseline, outage, recovery) and snapshots every instance's counters."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from chaos.amplification import scrape
from chaos.engine.extension import Extension
from chaos.engine.hypothesis import Check, Steady, check, finished_between, steady_counts
from chaos.engine.live_view import view
from chaos.engine.plan import Plan, Step
from chaos.engine.recovery import Recovery
from chaos.engine.scenario import Scenario
from chaos.engine.toolkit_journal import JournalDoc
from chaos.faults.injector import FaultInjector
from chaos.journal import EventName, Journal, headline
from chaos.rundir import REQUESTS_FILE
from chaos.runtime.base import Runtime
from loadtest.requests_reader import RequestRow, RequestsReader

TICK_S = 1.0
CHECK_EVERY_S = 2.0


class Walk:
    """The plan of one run, in time, against its runtime; its checks go into the JournalDoc, and ``run`` returns what
    else it found (chaos/engine/verdict.py judges)."""

    def __init__(
        self,
        scenario: Scenario,
        plan: Plan,
        runtime: Runtime,
        injector: FaultInjector,
        journal: Journal,
        doc: JournalDoc,
        console: Console,
        stop: threading.Event,
        run_dir: Path,
        load_running: Callable[[], bool] = lambda: True,
        extension: Extension | None = None,
    ) -> None:
        self.scenario, self.plan, self.runtime, self.injector = scenario, plan, runtime, injector
        self.extension = extension or Extension()  # read every tick: the run's end moves while it walks
        self.load_running = load_running
        self.journal, self.doc, self.console, self.stop = journal, doc, console, stop
        self.hyp = scenario.hypothesis
        self.actor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="timeline")
        self.steady: dict[str, Steady] = {}  # the steady state's requests served per probe, once measured
        self.pending: list[Future[None]] = []
        self.last_met: bool | None = None  # the hypothesis at the last check that had data
        self.told: tuple[bool | None, tuple[str, ...]] = (None, ())  # what the last printed line said
        self.recovery: Recovery | None = None  # since the last fault was removed
        self.requests = RequestsReader(run_dir / REQUESTS_FILE)
        self.recent: list[RequestRow] = []  # requests finished within the last window: all a check looks at
        self.findings: list[str] = []  # reasons beside the hypothesis checks (appended from the timeline thread too)

    def run(self) -> list[str]:
        t0 = time.time()
        self.journal.record(EventName.PHASE, phase="baseline")
        self._snapshot("baseline")
        steps = list(self.plan.steps)
        phase = "baseline"
        next_check = t0 + CHECK_EVERY_S
        self.live = Live(console=self.console, auto_refresh=False, transient=True)
        try:
            self.live.start()
            while not self.stop.is_set():
                now = time.time()
                elapsed = now - t0
                if not self.load_running():
                    # Without users every later check is empty: the run has nothing left to measure.
                    self.doc.load_stopped_at = round(elapsed, 1)
                    self.journal.record(EventName.LOAD_STOPPED, at_s=elapsed, phase=phase)
                    self.console.print(f"[red bold]the load stopped at {elapsed:.0f}s ({phase}): no users left[/]")
                    break
                phase = self._next_phase(phase, elapsed, t0, now)
                while steps and steps[0].at <= elapsed:
                    self.pending.append(self.actor.submit(self._take, steps.pop(0)))
                if now >= next_check:
                    next_check += CHECK_EVERY_S
                    self._tick(now, phase)
                    self._redraw(now, t0, phase)
                if elapsed >= self.end_s() and self._settled(now):
                    break
                time.sleep(TICK_S)
        finally:
            self.live.stop()
            self.actor.shutdown(wait=True)  # a step in progress finishes; rollbacks come after it
        now = time.time()
        if self.stop.is_set():
            self.findings.append(f"stopped early at {now - t0:.0f}s")
        if self.doc.before is None:
            self.doc.before = self._check(now, "before", (max(t0, now - self.hyp.window), now))
        self.doc.after = self._check(now, "after", (now - self.hyp.window, now))
        return self.findings

    def end_s(self) -> float:
        """When the timeline ends, after the start: the scenario's duration and any extension so far."""
        return self.scenario.duration + self.extension.seconds

    def _next_phase(self, phase: str, elapsed: float, t0: float, now: float) -> str:
        first_at, recovery_at = self.plan.first_fault_at, self.plan.recovery_at
        if phase == "baseline" and first_at is not None and elapsed >= first_at:
            self.doc.before = self._check(now, "before", (max(t0, now - self.hyp.window), now))
            self.steady = steady_counts(self.doc.before)
            self._snapshot("outage")
            self.journal.record(EventName.PHASE, phase="outage")
            return "outage"
        if phase == "outage" and recovery_at is not None and elapsed >= recovery_at:
            self._snapshot("recovery")
            self.journal.record(EventName.PHASE, phase="recovery")
            self.doc.start_recovery(now, self.hyp.recovered_within)
            self.recovery = Recovery(now)
            return "recovery"
        return phase

    def _settled(self, now: float) -> bool:
        """Every step done, and the last one at least a window ago: a power-on that took longer than planned
        still gets the time to be seen (and the run ends with its result, not in the middle of it)."""
        if any(not f.done() for f in self.pending):
            return False
        finished = max((r["end"] for r in self.doc.run), default=0.0)
        return now >= finished + self.hyp.window

    def _take(self, step: Step) -> None:
        started = time.time()
        record: dict[str, Any] = {
            "activity": step.action.to_data() if step.action else {"revert": step.revert},
            "at_s": step.at,
            "start": started,
        }
        try:
            if step.flap is not None and step.flap in self.injector.stable_power:
                record["output"] = {"dc": step.flap, "note": "on stable power: the generator drives it no more"}
            elif step.action is not None:
                record["fault_id"], record["output"] = self.injector.apply(step.action)
            else:
                record["output"] = self.injector.revert(step.revert or "")
            record["status"] = "succeeded"
            self.console.print(f"[bold magenta]{step.at:5.0f}s {step.describe()}[/]")
        except Exception as exc:  # a failed action is part of the result, not a crash
            record["status"] = "failed"
            record["error"] = f"{type(exc).__name__}: {exc}"
            self.console.print(f"[red]{step.at:5.0f}s {step.describe()} failed: {exc}[/]")
        record["end"] = time.time()
        record["duration"] = record["end"] - started
        unhealthy = _unhealthy(record.get("output"))
        if unhealthy:
            self.findings.append(f"{unhealthy} did not come back healthy after power-on")
        self.doc.run.append(record)

    def _tick(self, now: float, phase: str) -> None:
        if phase == "baseline":
            # checked (and journaled) from the start: were the first check the fault's, it would mark the onset
            self._check(now, "baseline", (now - self.hyp.window, now))
            return
        if phase == "recovery" and self.doc.recovery is not None and self.recovery is not None:
            since = self.recovery.removed_at
            if now - since < CHECK_EVERY_S:
                return  # too short a window to say anything
            result = self._check(now, "recovery", (max(since, now - self.hyp.window), now), started_after=since)
            held = True if result.recovered else False if result.met is False else None
            change = self.recovery.see(now, held)
            if change is not None:
                self.doc.recovery["recovered_after_s"] = self.recovery.after_s
                self.journal.record(EventName(change), after_s=now - since)
            self._print_tick(now, result)
            return
        if self.hyp.during:
            result = self._check(now, "during", (now - self.hyp.window, now))
            self.doc.during.append(result)
            self._print_tick(now, result)

    def _check(self, now: float, phase: str, window: tuple[float, float], started_after: float = 0.0) -> Check:
        rows = finished_between(self._recent(now), *window, started_after=started_after)
        result = check(self.hyp, rows, now, phase, window, self.steady)
        self.journal.record(
            EventName.HYPOTHESIS, phase=phase, met=result.met, probes=[p.to_data() for p in result.probes]
        )
        return result

    def _print_tick(self, now: float, result: Check) -> None:
        """A line when the verdict or the probes that deviated change (the live view shows every tick)."""
        said = headline(result.met, [p.to_data() for p in result.probes])
        if result.met is None or said == self.told:
            return
        self.last_met, self.told = result.met, said
        mark = "[green]holds[/]" if result.met else "[red]deviated[/]"
        shown = "  ".join(f"{p.probe}: {p.shown}" for p in result.probes if p.status != "no data")
        self.console.print(f"  {result.phase:>8} hypothesis {mark}: {shown}")

    def _redraw(self, now: float, t0: float, phase: str) -> None:
        rows = finished_between(self._recent(now), now - self.hyp.window, now)
        self.live.update(
            view(
                phase,
                now - t0,
                self.end_s(),
                rows,
                self.hyp.window,
                self.injector.active_ids(),
                self.last_met,
            ),
            refresh=True,
        )

    def _recent(self, now: float) -> list[RequestRow]:
        """The rows that finished within the window before ``now``, the file read only from where it was."""
        self.recent = [r for r in self.recent + self.requests.read_new() if r.finished >= now - self.hyp.window]
        return self.recent

    def _snapshot(self, phase: str) -> None:
        """Every running instance's counters as a phase starts: the report's retry amplification."""
        running = {
            name: (info["dc"], self.runtime.topology.url(name))
            for name, info in self.runtime.status().items()
            if info["state"] == "running"
        }
        self.journal.record(EventName.METRICS, phase=phase, instances=scrape(running))


def _unhealthy(output: object) -> str:
    if isinstance(output, dict) and output.get("healthy") is False:
        return f"{output.get('dc')} ({output.get('detail', '')[:200]})"
    return ""
