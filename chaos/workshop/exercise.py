"""One team's hidden-fault exercise, living in the controller's process: the hidden scenario run on the team's
stack, the team's declarations and actions, the events seen, and at the end the timers, score and draft.

Where things live. The team sees the control room through its link and the stack's run folder
(<runs>/<time>-up-<topology>/: the services' logs, the stack's journal of power and instances and of the
team's own moves). Everything that tells the answer is the instructor's: the exercise's folder
(<runs>/exercise/<time>-<team>/, mode 0700) holds the hidden scenario (0600), the round's scenario run
(its scenario.yaml, its full journal with faults, phases and checks, the users' requests, its report) and,
at the end, the post-mortem draft."""

from __future__ import annotations

import os
import queue
import random
import threading
import time
from pathlib import Path
from typing import Any

from chaos.controller import RUN_STOP_TIMEOUT_S, Controller
from chaos.engine.scenario import load_scenario
from chaos.journal import EventName, new_run_dir
from chaos.library import profile_named
from chaos.rundir import REQUESTS_FILE
from chaos.workshop.config import REMEDIATIONS, ExerciseConfig
from chaos.workshop.draft import write_draft, write_leaderboard
from chaos.workshop.hidden import HiddenFault, draw
from chaos.workshop.score import Score, lost_writes, score
from loadtest.requests_reader import RequestsReader
from services.common.errors import ConflictError, UsageError
from services.common.policy import load_profile

MAX_EVENTS = 5000  # the timeline of a two-hour workshop fits; a runaway stream cannot fill memory
# What a team's stream shows while it plays: what an on-call engineer sees of hosts (power, instances dying
# and starting, a profile switched) and its own moves. Never the fault, the phases, the checks or a recovery.
TEAM_SEES = frozenset(
    {
        EventName.POWER_OFF,
        EventName.POWER_ON,
        EventName.KILL_INSTANCE,
        EventName.START_INSTANCE,
        EventName.PROFILE,
        EventName.EXERCISE_DETECT,
        EventName.EXERCISE_ACT,
    }
)
PRIVATE = 0o700  # the exercise's folder: the instructor's account only


def exercise_folder(runs_root: Path, team: str) -> Path:
    """A new exercise's folder, <runs>/exercise/<time>-<team>, inside a folder only the instructor reads."""
    root = runs_root / "exercise"
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, PRIVATE)  # also an older folder made before exercises were private
    folder = new_run_dir(root, team)
    os.chmod(folder, PRIVATE)
    return folder


class Exercise:
    def __init__(self, controller: Controller, config: ExerciseConfig, folder: Path) -> None:
        self.controller = controller
        self.config = config
        self.folder = folder
        self.seed = config.seed if config.seed is not None else random.SystemRandom().randrange(2**31)
        self.started = time.time()
        self.hidden: HiddenFault = draw(config, self.seed, folder / ".hidden", controller.runs_root)
        self.onset: float | None = None
        self.declarations: list[dict[str, Any]] = []
        self.actions: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.result: dict[str, Any] | None = None  # set by end()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._queue = controller.bus.subscribe()
        self._watcher = threading.Thread(target=self._watch, name="exercise-events", daemon=True)

    def start(self) -> None:
        profile = profile_named(self.config.profile)  # an unknown name is refused here, before anything starts
        load_profile(profile)
        self._watcher.start()
        try:
            # the round's run folder goes into the exercise's: its scenario and journal name the fault
            self.controller.start_run(self.hidden.path, profile, self.seed, self.config.users, runs_root=self.folder)
        except Exception:
            self.close()
            raise

    # -- what the team does ------------------------------------------------------------------------
    def detect(self, text: str) -> dict[str, Any]:
        text = text.strip()
        if not text or len(text) > 500:
            raise UsageError("a declaration says what you found in 1-500 characters, e.g. 'dc-east lost power'")
        self._require_open()
        named = [t for t in self.hidden.targets if t in text.lower()]
        entry: dict[str, Any] = {"t": time.time(), "text": text, "names_target": bool(named)}
        with self._lock:
            self.declarations.append(entry)
        self.controller.journal.record(EventName.EXERCISE_DETECT, team=self.config.team, text=text)
        return {"t": entry["t"], "clock_s": round(entry["t"] - self.started, 1), "declarations": len(self.declarations)}

    def act(self, action: str, target: str | None) -> dict[str, Any]:
        self._require_open()
        if action not in self.config.allow:
            raise PermissionError(
                f"'{action}' is not allowed in this exercise; allowed: {', '.join(self.config.allow) or 'none'}"
            )
        if len(self.actions) >= self.config.max_actions:
            raise PermissionError(f"the instructor allowed {self.config.max_actions} actions; all are spent")
        entry: dict[str, Any] = {"t": time.time(), "action": action, "target": target}
        try:
            entry["output"] = self._dispatch(action, target)
            entry["status"] = "succeeded"
        except Exception as exc:
            entry["status"], entry["error"] = "failed", str(exc)[:300]
            raise
        finally:
            with self._lock:
                self.actions.append(entry)
            self.controller.journal.record(
                EventName.EXERCISE_ACT, team=self.config.team, action=action, target=target, status=entry["status"]
            )
        return {"action": action, "target": target, "status": "succeeded", "output": entry["output"]}

    def _dispatch(self, action: str, target: str | None) -> Any:
        c = self.controller
        does = REMEDIATIONS[action]
        if not target:
            raise UsageError(f"'{action}' needs a target (a data center, a profile name or a fault id)")
        if does in ("power_on", "power_off"):
            return c.power(target, does)
        if does == "profile":
            return c.switch_profile(load_profile(profile_named(target)))  # a name, never a path
        return c.remove(target)

    # -- what everyone sees --------------------------------------------------------------------------
    def view(self) -> dict[str, Any]:
        now = self.result["ended"] if self.result else time.time()  # the clock stops at the end
        # while playing, whether a declaration came after the onset would tell whether the fault has come
        detected = next(
            (d["t"] for d in self.declarations if self.result and self.onset is not None and d["t"] >= self.onset),
            None,
        )
        data = {
            "team": self.config.team,
            "state": "ended" if self.result else "running",
            "started": self.started,
            "clock_s": round(now - self.started, 1),
            "allow": list(self.config.allow),
            "actions_left": self.config.max_actions - len(self.actions),
            "declarations": [{**d, "names_target": None} if not self.result else d for d in self.declarations],
            "actions": self.actions,
            "detected_after_s": None if detected is None else round(detected - self.onset, 1),
            "fault_window_s": [self.config.onset.min, self.config.onset.max],
        }
        if self.result:
            data.update(self.result)
        return data

    def for_team(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """The event as the team may see it: while it plays, only what TEAM_SEES (None for the rest)."""
        if self.result or event.get("event") in TEAM_SEES:
            return event
        return None

    # -- the end -------------------------------------------------------------------------------------
    def end(self, board: Path | None) -> dict[str, Any]:
        if self.result is not None:
            return self.view()
        ended = time.time()
        self.controller.stop_run(wait=True)
        deadline = time.monotonic() + RUN_STOP_TIMEOUT_S
        while self.controller.run_state()["running"] and time.monotonic() < deadline:
            time.sleep(0.2)  # poll interval: the run's rollbacks are finishing
        self.close()
        run = self.controller.run_state().get("result") or {}
        run_dir = Path(run["run_dir"]) if run.get("run_dir") else None
        hyp = load_scenario(self.hidden.path).hypothesis
        # what users saw until the run stopped (nothing, when it stopped before its load started)
        rows = RequestsReader(run_dir / REQUESTS_FILE).read_new() if run_dir else []
        onset = self.onset if self.onset is not None and self.onset <= ended else None
        result: Score = score(
            hyp,
            rows,
            onset,
            ended,
            [d["t"] for d in self.declarations],
            lost_writes(run_dir) if run_dir else None,
        )  # no panic: it is the instructor's lever, never a team's fix (the team is scored on what users saw)
        self.result = {
            "score": result.to_data(),
            "hidden": self.hidden.to_data(),
            "seed": self.seed,
            "onset": onset,
            "ended": ended,
            "run_dir": str(run_dir) if run_dir else None,
            "run_error": run.get("error"),
        }
        self.result["draft"] = str(write_draft(self, self.folder))
        if board is not None:
            self.result["leaderboard"] = str(write_leaderboard(board))
        return self.view()

    def close(self) -> None:
        self._closed.set()
        self.controller.bus.unsubscribe(self._queue)

    def _require_open(self) -> None:
        if self.result is not None:
            raise ConflictError("the exercise has ended: start a new one")

    def _watch(self) -> None:
        while not self._closed.is_set():
            try:
                event = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if event.get("t", 0) < self.started:
                continue  # the bus's recent past, from before this exercise
            with self._lock:
                if len(self.events) < MAX_EVENTS:
                    self.events.append(event)
            if event.get("event") == EventName.PHASE and event.get("phase") == "outage" and self.onset is None:
                self.onset = float(event["t"])
