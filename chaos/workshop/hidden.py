"""The fault the trainees are not told: a library scenario, drawn by the seed or named by the instructor,
whose timeline is pushed later by an offset the seed draws. Written where the run can load it under a
neutral name, so the run directory, the status and the events never name the scenario."""

from __future__ import annotations

import os
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chaos.calibration import saved
from chaos.engine.scenario import library_names, load_scenario
from chaos.faults.actions import KINDS
from chaos.faults.fault_types import fault_type
from chaos.faults.model import ActionBase, parse_duration
from chaos.library import scenario_file
from chaos.workshop.config import ExerciseConfig
from services.common.errors import ConfigError

HIDDEN_NAME = "exercise"  # the run's scenario name as everyone sees it until the end
CONTROL_LEARN = (
    "Not every alarm is an incident. Knowing what normal looks like (the baseline's success, p99 and symptoms) is "
    "what lets a team say 'nothing is wrong' with confidence, and declaring an incident costs users' trust too."
)
CONTROL = "no fault (control round)"
CONTROL_CARD: dict[str, Any] = {  # a control round's card: the same ladder of hints as any round, and no model answer
    "look_for": [
        "each data center's success and p99 against the baseline of the first minute",
        "every instance healthy, no breaker open, no power event",
        "symptoms (0-view feeds, generic feeds, failed logins) at their usual level",
    ],
    "hints": [
        "Compare what users see now with the first minute of the round. What changed?",
        "Look for any instance down, any breaker open, any power event. Are users' numbers moving at all?",
        "Not every round has a fault. A declared incident that is not one costs points.",
    ],
    "debrief": [
        "What did normal look like, and how sure were you of it?",
        "What would have made you declare? Was that evidence there?",
        "What does a false page cost the people on call?",
    ],
    "answer": None,
}  # a control round's title, as the draft and the leaderboard name it
# A control round's timeline: the run needs a step, so 1 ms between the data centers for a second, where the
# scenario's first fault would have come (users cannot tell 1 ms; the team must not declare an incident).
NO_FAULT = {"latency": {"from": "dc-west", "to": "dc-east", "ms": 1}, "for": "1s"}


@dataclass
class HiddenFault:
    scenario: str
    title: str
    offset_s: float  # added to every step of the scenario's timeline
    first_fault_s: float  # after the run's baseline starts
    targets: list[str]  # data centers / services / instances the faults name: a declaration naming one is on target
    learn: str
    path: str  # the shifted scenario file the run loads
    control: bool = False  # no fault: the team should declare nothing
    fault_types: list[str] = field(default_factory=list)  # chaos/faults/fault_types.py, of the timeline's faults
    card: dict[str, Any] | None = None  # the scenario's card (chaos/engine/scenario.py Card), None for a control round
    round_s: float = 0.0  # how long the round's users are served: the pager's windows scale to it
    held: str = ""  # in a held round: what stays broken until a lever clears it
    cleared_by: list[dict[str, Any]] = field(default_factory=list)  # the levers that clear it (the scenario's hold)

    def to_data(self) -> dict[str, Any]:
        return asdict(self)


def draw(config: ExerciseConfig, seed: int, into: Path, runs_root: Path | None = None) -> HiddenFault:
    """The hidden fault; a named scenario is looked up in the library folders (``runs_root``'s own first)."""
    rng = random.Random(seed)
    source = scenario_file(
        config.scenario or rng.choice(_drawable(config, runs_root)), runs_root
    )  # unknown: lists them
    scenario = load_scenario(source)
    offset = round(rng.uniform(config.onset.min, config.onset.max), 1)
    control = config.control > 0 and rng.random() < config.control  # drawn only when the instructor asks
    data = yaml.safe_load(source.read_text())
    data["duration"] = f"{max(scenario.duration + offset, config.round or 0):g}s"
    if config.hold:  # nothing heals by itself: restoring service is the team's job (or the end's rollbacks)
        if scenario.hold is None:
            raise ConfigError(str(source), "field 'hold': the scenario declares no held round (hold: true needs it)")
        data["timeline"] = data["hold"]["timeline"]
        data["load"] = data["hold"].get("load") or data["load"]
        data["hypothesis"] = {k: v for k, v in data["hypothesis"].items() if k != "recovered_within"}
    data["timeline"] = [{**step, "at": f"{parse_duration(step['at']) + offset:g}s"} for step in data["timeline"]]
    data.pop("hold", None)  # the run plays one timeline; the card (hold.cleared_by) stays the instructor's
    if control:
        data["timeline"] = [{**NO_FAULT, "at": data["timeline"][0]["at"]}]
        data["hypothesis"] = {k: v for k, v in data["hypothesis"].items() if k != "recovered_within"}
    if config.users is not None:  # the instructor's number of users, in place of the scenario's (or its sizing)
        data["load"] = {
            **{k: v for k, v in data.get("load", {}).items() if k not in ("capacity", "of")},
            "users": config.users,
        }
    into.mkdir(parents=True, exist_ok=True)
    path = into / f"{HIDDEN_NAME}.yaml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the answer: the instructor's eyes only
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(data, f, sort_keys=False)
    shifted = load_scenario(path)  # validated as the run will see it
    steps = shifted.steps(str(path))
    if not steps:
        raise ConfigError(str(source), "field 'timeline': the scenario has no fault to hide")
    faults = [action for _, action in steps if KINDS[action.kind].fault]
    return HiddenFault(
        scenario=scenario.name,
        title=CONTROL if control else scenario.title,
        offset_s=offset,
        first_fault_s=steps[0][0],
        targets=[] if control else sorted({t for action in faults for t in _targets(action)}),
        learn=CONTROL_LEARN if control else scenario.learn.strip(),
        path=str(path),
        control=control,
        fault_types=[] if control else sorted({fault_type(action.kind) for action in faults}),
        card=CONTROL_CARD if control else (scenario.card.model_dump(mode="json") if scenario.card else None),
        round_s=shifted.duration,
        held=scenario.hold.broken.strip() if config.hold and scenario.hold and not control else "",
        cleared_by=list(scenario.hold.cleared_by) if config.hold and scenario.hold and not control else [],
    )


def _drawable(config: ExerciseConfig, runs_root: Path | None) -> list[str]:
    """The library scenarios a round can run now: one sized to the machine's capacity only once the machine
    is calibrated (or the instructor gave the users), so a draw never lands on a round that cannot start."""
    calibrated = config.users is not None or saved(runs_root or Path("runs")) is not None
    return [name for name in library_names() if calibrated or load_scenario(name).load.capacity is None]


def _targets(action: ActionBase) -> list[str]:
    """Every name an action aims at (dc-east, views-east, ...): the words a correct declaration contains."""
    return [name for _, name, _ in KINDS[action.kind].targets(action.spec)]
