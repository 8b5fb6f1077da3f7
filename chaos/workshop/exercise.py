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
from chaos.engine.scenario import SIGNS, load_scenario
from chaos.faults import fault_types
from chaos.faults.actions import KINDS, make
from chaos.faults.fault_types import fault_type
from chaos.journal import EventName, new_run_dir
from chaos.library import profile_named
from chaos.rundir import REQUESTS_FILE
from chaos.workshop.config import REMEDIATIONS, ExerciseConfig
from chaos.workshop.draft import write_draft, write_leaderboard
from chaos.workshop.hidden import HiddenFault, draw
from chaos.workshop.pager import Pager, Windows
from chaos.workshop.score import HINT_COSTS, Acted, Declared, Place, Score, Truth, lost_writes, score
from chaos.workshop.window import current_run_dir
from loadtest.requests_reader import RequestsReader
from services.common.errors import BlackoutError, ConfigError, ConflictError, UsageError
from services.common.policy import load_profile

PAGER_EVERY_S = 1.0  # the pager reads what users finished and checks the burn this often
MAX_EVENTS = 5000  # the timeline of a two-hour workshop fits; a runaway stream cannot fill memory
MAX_STATUS_UPDATES = 200  # a round's status updates: a few a minute; a runaway script cannot fill memory
ROLE_SLOTS = ("incident_commander", "ops", "communications")  # the team page's role slots (free-text names)
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
        EventName.EXERCISE_HINT,
        EventName.PAGE,  # the pager is the room's: what users' error budget says, not the fault
        EventName.PAGE_ACK,
    }
)
# The kinds a game master may add as a second fault: the registry's faults that act on a live stack.
ADDABLE: tuple[str, ...] = tuple(name for name, kind in KINDS.items() if kind.fault and kind.live)
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
        self.hints: list[dict[str, Any]] = []  # the card's hints the room asked for (or was given), in order
        self.added_faults: list[dict[str, Any]] = []  # the second faults the game master added from the console
        self.roles: dict[str, str] = dict.fromkeys(ROLE_SLOTS, "")
        self.status_updates: list[dict[str, Any]] = []  # the communications lead's timestamped updates
        self.extensions: list[dict[str, Any]] = []  # the game master's extensions of the round, in order
        self.pager = Pager(Windows.for_round(self.hidden.round_s))
        self.result: dict[str, Any] | None = None  # set by end()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._queue = controller.bus.subscribe()
        self._watcher = threading.Thread(target=self._watch, name="exercise-events", daemon=True)
        self._paging = threading.Thread(target=self._page, name="exercise-pager", daemon=True)

    def start(self) -> None:
        profile = profile_named(self.config.profile)  # an unknown name is refused here, before anything starts
        load_profile(profile)
        self._watcher.start()
        # link faults, the round's and any the instructor adds by hand meanwhile, go to the services quiet: their
        # logs and /metrics, which the team reads, do not name them (the round's journal does)
        self.controller.injector.quiet = True
        self._paging.start()
        try:
            # the round's run folder goes into the exercise's: its scenario and journal name the fault
            self.controller.start_run(
                self.hidden.path, profile, self.seed, self.config.users, runs_root=self.folder, quiet=True
            )
        except Exception:
            self.close()
            raise

    # -- what the team does ------------------------------------------------------------------------
    def detect(self, symptom: str, where: str, fault: str, text: str = "") -> dict[str, Any]:
        """A structured declaration: what users see (SIGNS), where (a data center, service or instance of this
        stack) and the fault type (chaos/faults/fault_types.py); ``text``: the team's own words."""
        self._require_open()
        if symptom not in SIGNS:
            raise ConfigError("request body", f"field 'symptom': unknown; what users see: {', '.join(SIGNS)}")
        if fault not in fault_types.NAMES:
            raise ConfigError("request body", f"field 'fault': unknown; fault types: {', '.join(fault_types.NAMES)}")
        place = self.place(where)
        now = time.time()
        entry = {"t": now, "symptom": symptom, "where": place.name, "fault": fault, "text": text.strip()}
        entry["names_target"] = place.name in self.hidden.targets
        with self._lock:
            self.declarations.append(entry)
        self.controller.journal.record(
            EventName.EXERCISE_DETECT, team=self.config.team, symptom=symptom, where=place.name, fault=fault, text=text
        )
        return {"t": now, "clock_s": round(now - self.started, 1), "declarations": len(self.declarations)}

    def place(self, name: str) -> Place:
        """``name`` resolved in the stack's topology; an unknown one is refused with what exists."""
        topology = self.controller.runtime.topology
        try:
            instances = frozenset(topology.find(name))
        except ConfigError as exc:
            raise ConfigError("request body", f"field 'where': {exc}") from None
        dcs = frozenset(topology.dc_of(i) for i in instances)
        return Place(name, instances, dcs, name in topology.data_centers)

    def hint(self, by: str = "team") -> dict[str, Any]:
        """The card's next hint: the ladder goes from vague to nearly the answer, each dearer (HINT_COSTS).
        ``by``: "team" (the room asked) or "instructor" (the console pushed it): the same help, the same cost."""
        self._require_open()
        ladder = (self.hidden.card or {}).get("hints") or []
        with self._lock:
            if len(self.hints) >= len(ladder):
                raise ConflictError(f"no hint left: the card has {len(ladder)}, all taken")
            n = len(self.hints)
            entry = {"t": time.time(), "n": n + 1, "text": ladder[n], "cost": HINT_COSTS[n], "by": by}
            self.hints.append(entry)
        self.controller.journal.record(
            EventName.EXERCISE_HINT, team=self.config.team, n=n + 1, cost=HINT_COSTS[n], by=by
        )
        return {**entry, "hints_left": len(ladder) - n - 1}

    def add_fault(self, kind: str, target: str | dict[str, Any], for_s: float | None = None) -> dict[str, Any]:
        """The game master's second fault: one of the registry's fault kinds (chaos/faults/actions.py) on a
        target of the topology, injected through the controller's own fault path (journaled as any fault);
        it counts in the round's truth (a declaration naming it is on target) and is undone at the end."""
        self._require_open()
        if kind not in ADDABLE:
            raise ConfigError(
                "request body", f"field 'kind': '{kind}' is no fault kind; fault kinds: {', '.join(ADDABLE)}"
            )
        body: dict[str, Any] = {kind: target}
        if for_s is not None:
            body["for"] = f"{for_s:g}s"
        added = self.controller.inject(body)
        entry = {"t": time.time(), "kind": kind, "target": target, "id": added["id"]}
        with self._lock:
            self.added_faults.append(entry)
        return {**entry, "output": added["output"]}

    def extend(self, seconds: float) -> dict[str, Any]:
        """The game master gives the team more time: the round's run (its users, a held fault) ends ``seconds``
        later than planned; the score covers the round until it is ended, as before."""
        self._require_open()
        total = self.controller.extend_run(seconds)
        entry = {"t": time.time(), "seconds": seconds}
        with self._lock:
            self.extensions.append(entry)
        return {**entry, "extended_s": total, "round_s": self.hidden.round_s + total}

    def set_roles(self, roles: dict[str, str]) -> dict[str, str]:
        """Who holds which role this round: free-text names, kept with the exercise (and in the draft)."""
        self._require_open()
        with self._lock:
            self.roles.update({slot: name.strip() for slot, name in roles.items() if slot in ROLE_SLOTS})
            return dict(self.roles)

    def status_update(self, text: str) -> dict[str, Any]:
        """A timestamped status update (what the communications lead tells users): in the console and the draft."""
        self._require_open()
        with self._lock:
            if len(self.status_updates) >= MAX_STATUS_UPDATES:
                raise ConflictError(f"{MAX_STATUS_UPDATES} status updates already: that is the round's limit")
            now = time.time()
            entry: dict[str, Any] = {"t": now, "text": text.strip(), "by": self.roles["communications"]}
            self.status_updates.append(entry)
        return {**entry, "clock_s": round(now - self.started, 1)}

    def ack(self) -> dict[str, Any]:
        """The team acknowledges the page: its time to acknowledge is scored (only the first ack counts)."""
        self._require_open()
        page = self.pager.page
        if page is None:
            raise ConflictError("nothing to acknowledge: the pager has not paged")
        with self._lock:
            if page.acked_at is None:
                page.acked_at = time.time()
                self.controller.journal.record(
                    EventName.PAGE_ACK, team=self.config.team, after_s=round(page.acked_at - page.t, 1)
                )
        return page.to_data()

    def act(self, action: str, target: str | dict[str, Any] | None) -> dict[str, Any]:
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

    def _dispatch(self, action: str, target: str | dict[str, Any] | None) -> Any:
        c = self.controller
        does = REMEDIATIONS[action]
        if not target:
            raise UsageError(f"'{action}' needs a target (a data center, an instance, a profile name or a fault id)")
        if does == "remove":
            if not isinstance(target, str):
                raise UsageError("remove-fault takes the id of a fault or of a lever pulled")
            return c.remove(target)
        if does == "power_off":
            if not isinstance(target, str):
                raise UsageError("power-off takes a data center")
            return c.power(target, does)
        return c.lever(make(does, _spec(does, target), "act"))

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
            "hints": list(self.hints),
            "hints_left": len((self.hidden.card or {}).get("hints") or []) - len(self.hints),
            "next_hint_cost": HINT_COSTS[len(self.hints)] if len(self.hints) < len(HINT_COSTS) else None,
            "page": None if self.pager.page is None else {**self.pager.page.to_data(), "text": self.pager.page.text()},
            "vocabulary": self.vocabulary(),
            "roles": dict(self.roles),
            "status_updates": list(self.status_updates),
        }
        if self.result:
            data.update(self.result)
        return data

    def vocabulary(self) -> dict[str, list[str]]:
        """What a declaration may say: the room's choices."""
        topology = self.controller.runtime.topology
        services = sorted({inst.service for _, inst in topology.instances().values()})
        return {
            "symptom": list(SIGNS),
            "where": [*topology.data_centers, *services, *topology.instances()],
            "fault": list(fault_types.NAMES),
        }

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
        for added in self.added_faults:  # the game master's faults end with the round, as the run's own do
            if added["id"] is not None:
                try:
                    self.controller.remove(added["id"])
                except BlackoutError:
                    pass  # expired (its `for`) or removed by the team already: nothing left to undo
        run = self.controller.run_state().get("result") or {}
        run_dir = Path(run["run_dir"]) if run.get("run_dir") else None
        onset = self._onset(ended)
        result = self.scored(run_dir, onset, ended)
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

    def _onset(self, until: float) -> float | None:
        # a control round's stand-in step (1 ms for a second) is no onset: there was nothing to find
        return self.onset if self.onset is not None and self.onset <= until and not self.hidden.control else None

    def scored(self, run_dir: Path | None, onset: float | None, until: float) -> Score:
        """The score of the round until ``until``, from what users of ``run_dir`` saw (chaos/workshop/score.py)."""
        hyp = load_scenario(self.hidden.path).hypothesis
        # what users saw until then (nothing, when the run stopped before its load started)
        rows = RequestsReader(run_dir / REQUESTS_FILE).read_new() if run_dir else []
        page = self.pager.page
        return score(
            hyp,
            rows,
            onset,
            until,
            [Declared(d["t"], d["symptom"], self.place(d["where"]), d["fault"]) for d in self.declarations],
            self.truth(onset),
            lost_writes=lost_writes(run_dir) if run_dir else None,
            hints=len(self.hints),
            actions=[Acted(a["t"], a["action"], a["target"]) for a in self.actions if a["status"] == "succeeded"],
            paged_at=page.t if page else None,
            acked_at=page.acked_at if page else None,
        )  # no panic: it is the instructor's lever, never a team's fix (the team is scored on what users saw)

    def console(self) -> dict[str, Any]:
        """What the game master's console shows: the view, the hidden scenario, the faults added and the score
        as it stands now (provisional: the same score function as the end's, over what users saw so far)."""
        now = self.result["ended"] if self.result else time.time()
        data = self.view()
        data["hidden"] = self.hidden.to_data()
        data["onset"] = self._onset(now)
        data["added_faults"] = list(self.added_faults)
        data["extensions"] = list(self.extensions)
        data["round_s"] = self.hidden.round_s + sum(e["seconds"] for e in self.extensions)  # users' time, planned
        if self.result is None:
            run_dir = current_run_dir(self.folder)
            if run_dir is not None and run_dir.stat().st_mtime < self.started:
                run_dir = None  # an older round's folder: this round's users have not started yet
            data["score"] = {**self.scored(run_dir, data["onset"], now).to_data(), "provisional": True}
        return data

    def truth(self, onset: float | None) -> Truth:
        """What the round was: the instances its faults aimed at (the ones a kill really took, when the seed
        chose among a service's) and the fault types."""
        if self.hidden.control:
            return Truth(control=True)
        topology = self.controller.runtime.topology
        named = [*self.hidden.targets, *(t for a in self.added_faults for t in _added_targets(a))]
        instances = {i for target in named for i in topology.find(target)}
        killed = {
            e["instance"]
            for e in self.events
            if e.get("event") == EventName.KILL_INSTANCE and onset is not None and e.get("t", 0) >= onset
        }
        if killed & instances:  # a kill aimed at a service took one of its instances: the one that died
            instances &= killed
        dcs = frozenset(topology.dc_of(i) for i in instances)
        types = {*self.hidden.fault_types, *(fault_type(a["kind"]) for a in self.added_faults)}
        return Truth(False, frozenset(instances), dcs, frozenset(types))

    def close(self) -> None:
        self.controller.injector.quiet = False
        self._closed.set()
        self.controller.bus.unsubscribe(self._queue)

    def _require_open(self) -> None:
        if self.result is not None:
            raise ConflictError("the exercise has ended: start a new one")

    def _page(self) -> None:
        """The pager, on what users of this round's run finished (the newest requests.csv, made after the start)."""
        reader: RequestsReader | None = None
        while not self._closed.wait(PAGER_EVERY_S):
            if reader is None:
                run_dir = current_run_dir(self.folder)  # the round runs in the exercise's own folder
                if run_dir is None or run_dir.stat().st_mtime < self.started:
                    continue
                reader = RequestsReader(run_dir / REQUESTS_FILE)
            if not self.pager.watching:
                continue  # the users' ramp is no incident: the pager watches from the scenario's baseline on
            self.pager.feed(reader.read_new())
            if not self.controller.run_state()["running"]:
                return  # the users are gone: their silence now is no outage
            page = self.pager.check(time.time())
            if page is not None:
                self.controller.journal.record(
                    EventName.PAGE,
                    team=self.config.team,
                    scope=page.scope,
                    burn_long=page.burn_long,
                    burn_short=page.burn_short,
                    text=page.text(),
                )

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
            if event.get("event") == EventName.PHASE and event.get("phase") == "baseline":
                self.pager.watch_from(float(event["t"]))
            if event.get("event") == EventName.PHASE and event.get("phase") == "outage" and self.onset is None:
                self.onset = float(event["t"])


def _added_targets(added: dict[str, Any]) -> list[str]:
    """The names a game master's fault aims at, as the hidden fault's targets are read (chaos/workshop/hidden.py)."""
    action = make(added["kind"], added["target"], "console")
    return [name for _, name, _ in KINDS[action.kind].targets(action.spec)]


def _spec(kind: str, target: str | dict[str, Any]) -> object:
    """A lever's spec from the team's target: a mapping as it is, else the one word the lever is named by."""
    if isinstance(target, dict):
        return target
    if kind == "deploy":
        return {"profile": target}
    if kind == "shed_logins":
        try:
            return {"per_s": float(target)}
        except ValueError:
            raise UsageError(f"shed-logins takes logins per second per gateway, e.g. 5; got {target!r}") from None
    return target
