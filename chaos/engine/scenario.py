"""A scenario file: what to teach, the load, the steady-state hypothesis and the timeline of actions.

Validated completely before anything starts: a bad file is refused naming the file, the field and why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chaos.faults.actions import KINDS, LEVERS, parse_action
from chaos.faults.fault_types import check_type
from chaos.faults.model import ActionBase, Duration, parse_duration
from loadtest.control import think_range
from services.common import symptoms
from services.common.config_files import describe, load_yaml
from services.common.errors import ConfigError
from services.common.names import UserAction

LIBRARY = Path(__file__).resolve().parents[1] / "scenarios"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Where(_Model):
    action: UserAction | None = None
    dc: str | None = None
    # fewer requests in a window: "no data" (default: the hypothesis's min_requests). Lower for a rare action
    # whose every failure matters (logins, ~1 in 100 actions).
    min_requests: int | None = Field(None, ge=1)

    def label(self) -> str:
        return " ".join(filter(None, [self.action or "all actions", f"@ {self.dc}" if self.dc else ""]))


class SuccessRate(Where):
    min: float = Field(ge=0, le=1)


class P99(Where):
    max_ms: float = Field(gt=0)


class Symptom(_Model):
    name: str  # one of services/common/symptoms.py
    max: int = Field(ge=0)

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        return symptoms.symptom(name).name  # an unknown name is refused with the list of known ones


class Probe(_Model):
    """One tolerance of the steady state; exactly one of the three kinds."""

    name: str | None = None
    success_rate: SuccessRate | None = None
    p99: P99 | None = None
    symptom: Symptom | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Probe:
        kinds = [k for k in ("success_rate", "p99", "symptom") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"give exactly one of success_rate, p99, symptom (got {', '.join(kinds) or 'none'})")
        return self

    def label(self) -> str:
        if self.name:
            return self.name
        if self.success_rate:
            return f"{self.success_rate.label()} success >= {self.success_rate.min:.0%}"
        if self.p99:
            return f"{self.p99.label()} p99 <= {self.p99.max_ms:g} ms"
        assert self.symptom
        return f"{self.symptom.name} <= {self.symptom.max}"


class Hypothesis(_Model):
    window: Duration = 10.0  # each check looks at the requests that finished in the last `window`
    min_requests: int = Field(8, ge=1)  # fewer in a window: "no data", neither held nor deviated
    probes: list[Probe] = Field(min_length=1)
    during: bool = True  # also checked at every tick while a fault is active
    recovered_within: Duration | None = None  # after the last fault is removed, the probes hold again within


class LoadStep(_Model):
    """Users, either a number or sized to this machine: ``capacity: 0.8`` is as many users as offer 0.8 x the
    capacity ``blackout calibrate`` measured (a lesson about load near capacity holds on any machine)."""

    users: int | None = Field(None, ge=1, le=100_000)
    capacity: float | None = Field(None, gt=0, le=10)  # a fraction of the calibrated capacity
    # which capacity: user actions (feeds and views), or logins (auth's: what a login storm saturates)
    of: Literal["actions", "logins"] = "actions"
    spawn_rate: float | None = Field(None, gt=0)
    think_s: tuple[float, float] | None = None  # each user's pause after an action, [min, max]; the demo's ~1 s

    @field_validator("think_s")
    @classmethod
    def _think_range(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        return None if value is None else think_range(value)

    @model_validator(mode="after")
    def _one_size(self) -> LoadStep:
        if (self.users is None) == (self.capacity is None):
            raise ValueError("give exactly one of users (a number) or capacity (a fraction of `blackout calibrate`'s)")
        # a run's saved copy writes every field, `of: actions` beside users included: only a capacity of logins
        # means nothing with users
        if self.users is not None and self.of != "actions":
            raise ValueError("'of' says which capacity a 'capacity' fraction is of: not with users")
        return self

    def describe(self) -> str:
        if self.users is not None:
            return str(self.users)
        return f"{self.capacity:g}x capacity" + (" of logins" if self.of == "logins" else "")


# What users see, as a card or a team's declaration names it: plain failures and slowness (which the symptom
# registry leaves out: every request records them) and the registry's symptoms.
PLAIN_SIGNS: tuple[str, ...] = ("failed_requests", "slow_requests")
SIGNS: tuple[str, ...] = (*PLAIN_SIGNS, *symptoms.NAMES)


def check_sign(name: str) -> str:
    if name not in SIGNS:
        raise ValueError(f"unknown sign {name!r}; what users see: {', '.join(SIGNS)}")
    return name


class ModelAnswer(_Model):
    """What a team that did well declared and did, with the times a trainer may hope for."""

    symptom: Annotated[str, AfterValidator(check_sign)]  # what users saw first
    where: str = Field(min_length=1)  # a data center, service or instance the fault aims at
    fault: Annotated[str, AfterValidator(check_type)]  # a fault type (chaos/faults/fault_types.py)
    detect_s: Duration  # target time to detect, from the fault's onset
    mitigate_s: Duration  # target time to mitigate (users served again), from the onset
    actions: list[str] = Field(min_length=1)  # what to do, in order
    summary: str = Field(min_length=1)


class Card(_Model):
    """The instructor's card for a scenario: shown to nobody while a round is played, except the hints the room
    asks for (each costs points); beside the team's own timeline in the post-mortem draft at the end."""

    look_for: list[str] = Field(min_length=1)
    hints: list[str] = Field(min_length=3, max_length=3)  # a ladder: vague, pointed, nearly the answer
    debrief: list[str] = Field(min_length=1)
    answer: ModelAnswer


class Hold(_Model):
    """A held round (a workshop's ``hold: true``): nothing heals by itself. What stays broken, the timeline that
    breaks it (nothing in it restores power), and the levers that, pulled together in this order, clear it
    (``cleared_by``: each an action of chaos.faults.actions that is a lever, e.g. ``{restart_instance: views-east}``)."""

    broken: str = Field(min_length=1)
    timeline: list[dict[str, Any]] = Field(min_length=1)
    cleared_by: list[dict[str, Any]] = Field(min_length=1)
    # the held round's users, when not the scenario's (e.g. a storm held longer may need less load to stick, and its
    # levers must still be able to clear it); the instructor's `users` still wins
    load: LoadStep | None = None


class Scenario(_Model):
    name: str = ""  # the file's stem
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    learn: str = Field(min_length=1)
    profiles: dict[str, str] = {}  # profile -> the outcome this scenario is expected to show (documentation)
    load: LoadStep
    duration: Duration
    hypothesis: Hypothesis
    timeline: list[dict[str, Any]] = Field(min_length=1)
    card: Card | None = None  # the workshop's card; every library scenario has one
    hold: Hold | None = None  # a workshop's held round; without it the scenario cannot be played held

    def steps(self, source: str = "") -> list[tuple[float, ActionBase]]:
        return parse_timeline(self.timeline, source or self.name, self.duration)


def parse_timeline(
    raw: list[dict[str, Any]], source: str, duration: float, field: str = "timeline"
) -> list[tuple[float, ActionBase]]:
    steps = []
    for n, item in enumerate(raw):
        where = f"{field}.{n}"
        if not isinstance(item, dict) or "at" not in item:
            raise ConfigError(source, f"field '{where}.at': every step needs an offset, e.g. at: 20s")
        try:
            at = parse_duration(item["at"])
        except ValueError as exc:
            raise ConfigError(source, f"field '{where}.at': {exc}") from None
        if at >= duration:
            raise ConfigError(source, f"field '{where}.at': {at:g}s is not before the end of the run ({duration:g}s)")
        action = parse_action(item, source, where)
        if action.duration_s is not None and at + action.duration_s >= duration:
            raise ConfigError(source, f"field '{where}.for': the fault would outlast the run ({duration:g}s)")
        steps.append((at, action))
    return sorted(steps, key=lambda step: step[0])


def parse_scenario(data: object, source: str, name: str = "") -> Scenario:
    if not isinstance(data, dict):
        raise ConfigError(source, "a scenario is a mapping with title, description, learn, load, hypothesis, timeline")
    try:
        scenario = Scenario.model_validate({**data, "name": name or data.get("name", "")})
    except ValidationError as exc:
        raise ConfigError(source, describe(exc)) from None
    steps = scenario.steps(source)
    if scenario.hold is not None:
        check_hold(scenario.hold, source, scenario.duration)
    last = max(at + (action.duration_s or 0) for at, action in steps)
    hyp = scenario.hypothesis
    if hyp.recovered_within is not None and last + hyp.recovered_within > scenario.duration:
        raise ConfigError(
            source,
            f"field 'duration': {scenario.duration:g}s leaves no room to see recovery "
            f"within {hyp.recovered_within:g}s after the last fault ({last:g}s)",
        )
    return scenario


def check_hold(hold: Hold, source: str, duration: float) -> None:
    """A held timeline restores no power by itself (a `for` may end a trigger, as retry-storm's stall ends while
    the storm it set off goes on) and every ``cleared_by`` entry is a lever; else the error names the file and
    the field."""
    parse_timeline(hold.timeline, source, duration, "hold.timeline")  # each step as valid as the timeline's
    for n, item in enumerate(hold.timeline):
        action = parse_action(item, source, f"hold.timeline.{n}")
        if action.kind == "power_on" and action.spec.rest != "dark":
            raise ConfigError(
                source, f"field 'hold.timeline.{n}.power_on': a held round restores no power (unless `rest: dark`)"
            )
    for n, item in enumerate(hold.cleared_by):
        where = f"hold.cleared_by.{n}"
        if isinstance(item, dict) and ("at" in item or "for" in item):
            raise ConfigError(source, f"field '{where}': a lever has no `at` or `for`: the team pulls it")
        action = parse_action(item, source, where)
        if not KINDS[action.kind].lever:
            raise ConfigError(source, f"field '{where}': {action.kind} is not a lever; levers: {', '.join(LEVERS)}")


def scenario_path(name_or_path: str | Path) -> Path:
    """The file of a scenario of the library by name (``dc-power-loss``), or the file given by path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = LIBRARY / f"{name_or_path}.yaml"
        if not path.exists():
            raise ConfigError(f"scenario '{name_or_path}'", f"unknown; scenarios: {', '.join(library_names())}")
    return path


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A scenario of the library by name (``dc-power-loss``) or any file by path."""
    path = scenario_path(name_or_path)
    return parse_scenario(load_yaml(path), str(path), path.stem)


def library_names() -> list[str]:
    return sorted(p.stem for p in LIBRARY.glob("*.yaml"))


def library() -> list[Scenario]:
    return [load_scenario(name) for name in library_names()]
