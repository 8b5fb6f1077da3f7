"""A scenario's timeline as concrete steps: flaps unrolled, timed faults paired with their reverts, ids given.

Pure data, computed before anything starts, so validating a scenario and running it are separate.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos.faults.actions import KINDS, make
from chaos.faults.model import ActionBase


@dataclass(frozen=True)
class Step:
    at: float
    action: ActionBase | None = None  # apply this...
    revert: str | None = None  # ...or revert the fault with this id
    flap: str | None = None  # the data center whose flapping generator takes this step (passed by once stable)

    def describe(self) -> str:
        return self.action.describe() if self.action else f"revert {self.revert}"


@dataclass(frozen=True)
class Plan:
    steps: list[Step]
    first_fault_at: float | None  # the outage phase starts here
    recovery_at: float | None  # the last fault is removed here (None: faults last until the run ends)


def make_plan(timeline: list[tuple[float, ActionBase]]) -> Plan:
    steps: list[Step] = []
    n = 0
    for at, action in timeline:
        if action.kind == "flap":
            spec = action.spec
            t = at
            for _ in range(spec.times):
                steps.append(Step(t, make("power_off", spec.dc), flap=spec.dc))
                steps.append(Step(t + spec.off_for, make("power_on", spec.dc), flap=spec.dc))
                t += spec.off_for + spec.on_for
            continue
        n += 1
        duration_s = action.duration_s
        if duration_s is not None:
            fault_id = action.id or f"{action.kind.replace('_', '-')}-{n}"
            action = action.model_copy(update={"id": fault_id})
            steps.append(Step(at, action))
            steps.append(Step(at + duration_s, revert=fault_id))
        else:
            steps.append(Step(at, action))
    steps.sort(key=lambda s: s.at)  # stable: a revert and a new fault at the same instant keep their order
    return Plan(steps, *_phases(steps))


def _phases(steps: list[Step]) -> tuple[float | None, float | None]:
    """When the first fault starts, and when the last one ends, from the steps alone (a profile switch is a
    remedy and a power-on a restore: neither starts an outage)."""
    active: set[object] = set()
    first = recovery = None
    for step in steps:
        if step.action is not None and KINDS[step.action.kind].fault:
            first = step.at if first is None else first
            active.add(_key(step.action))
            recovery = None
        elif step.revert is not None:
            active.discard(step.revert)
            recovery = step.at if not active else None
        elif step.action is not None and step.action.kind == "power_on":
            active.discard(_key(make("power_off", step.action.spec.dc)))  # the cut it restores
            recovery = step.at if not active else None
    return first, recovery


def _key(action: ActionBase) -> object:
    """Which fault a step starts: its id, else its kind and target (what a later power-on settles)."""
    return action.id or (action.kind, repr(action.spec))
