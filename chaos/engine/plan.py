"""A scenario's timeline as concrete steps: flaps unrolled, timed faults paired with their reverts, ids given.

Pure data, computed before anything starts, so validating a scenario and running it are separate.
"""
from __future__ import annotations

from dataclasses import dataclass

from chaos.faults.model import Action, PowerOn

NOT_FAULTS = frozenset({"profile"})  # a profile switch is a remedy, not a fault: it does not start an outage


@dataclass(frozen=True)
class Step:
    at: float
    action: Action | None = None  # apply this...
    revert: str | None = None  # ...or revert the fault with this id

    def describe(self) -> str:
        return self.action.describe() if self.action else f"revert {self.revert}"


@dataclass(frozen=True)
class Plan:
    steps: list[Step]
    first_fault_at: float | None  # the outage phase starts here
    recovery_at: float | None  # the last fault is removed here (None: faults last until the run ends)


def make_plan(timeline: list[tuple[float, Action]]) -> Plan:
    steps: list[Step] = []
    n = 0
    for at, action in timeline:
        if action.kind == "flap":
            spec = action.spec
            t = at
            for _ in range(spec.times):
                steps.append(Step(t, Action(kind="power_off", spec=spec.dc)))
                steps.append(Step(t + spec.off_for, Action(kind="power_on", spec=PowerOn(dc=spec.dc))))
                t += spec.off_for + spec.on_for
            continue
        n += 1
        if action.duration_s is not None:
            fault_id = action.id or f"{action.kind.replace('_', '-')}-{n}"
            action = action.model_copy(update={"id": fault_id})
            steps.append(Step(at, action))
            steps.append(Step(at + action.duration_s, revert=fault_id))
        else:
            steps.append(Step(at, action))
    steps.sort(key=lambda s: s.at)  # stable: a revert and a new fault at the same instant keep their order
    return Plan(steps, *_phases(steps))


def _phases(steps: list[Step]) -> tuple[float | None, float | None]:
    """When the first fault starts, and when the last one ends, from the steps alone."""
    active: set[str] = set()
    first = recovery = None
    for step in steps:
        if step.action is not None and step.action.kind not in NOT_FAULTS | {"power_on"}:
            first = step.at if first is None else first
            key = step.action.id or f"{step.action.kind}:{step.action.spec}"
            active.add(key)
            recovery = None
        elif step.revert is not None:
            active.discard(step.revert)
            recovery = step.at if not active else None
        elif step.action is not None and step.action.kind == "power_on":
            active = {k for k in active if k != f"power_off:{step.action.spec.dc}"}
            recovery = step.at if not active else None
    return first, recovery
