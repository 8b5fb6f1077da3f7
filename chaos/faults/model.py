"""The shapes of the actions a scenario timeline or the control API can take: durations, names and specs.

Which kinds exist, and what each one is and does, is declared once in chaos.faults.actions. A timeline step is ``{at: 20s, <action>: <spec>, for: 30s (optional), id: name (optional)}`` with exactly
one action key. ``for`` reverts the action that long after it was taken; without it a fault lasts until a
later step undoes it (``power_on`` after ``power_off``) or the run ends, when every rollback runs.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from services.common.names import DependencyName, ServiceName

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """``20s``, ``500ms``, ``2m`` or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration such as 20s, 500ms or 2m")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration such as 20s, 500ms or 2m")
    if seconds < 0 or seconds > 24 * 3600:
        raise ValueError(f"{value!r}: a duration between 0 and 24h")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,39}$")]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PowerOn(_Spec):
    dc: Name
    boot_order: list[ServiceName] = []
    stagger: Duration = 0.0
    # the services boot_order leaves out: they boot last, or stay dark (a boot that stalled half-way: only a
    # later power-on brings them, e.g. an operator's with the systems of record first)
    rest: Literal["last", "dark"] = "last"


class Flap(_Spec):
    dc: Name
    times: int = Field(ge=1, le=20)
    off_for: Duration  # not `off`/`on`: YAML reads those words as booleans
    on_for: Duration


class Link(_Spec):
    """Calls from one place to another: each end a data center, a service or an instance."""

    source: Name = Field(alias="from")
    to: Name


class Latency(Link):
    ms: float = Field(gt=0, le=60_000)
    jitter_ms: float = Field(0, ge=0, le=60_000)


class Errors(Link):
    rate: float = Field(gt=0, le=1)


class Blackhole(Link):
    pass


class _BetweenDataCenters(Link):
    """A fault in the network between two data centers (their links): two different ones."""

    @model_validator(mode="after")
    def _two(self) -> _BetweenDataCenters:
        if self.source == self.to:
            raise ValueError(f"'from' and 'to' are both {self.source}: give two data centers")
        return self


class Loss(_BetweenDataCenters):
    """That share of the packets between two data centers dropped at random, each way."""

    percent: int = Field(ge=1, le=100)


class Corruption(_BetweenDataCenters):
    """That share of the packets ``from`` sends to ``to`` with one bit flipped: the receiver's checksum catches it."""

    percent: float = Field(gt=0, le=100)


class Rate(_BetweenDataCenters):
    """What ``from`` sends to ``to`` limited to ``mbit`` megabits a second."""

    mbit: float = Field(gt=0, le=10_000)


class Brownout(_Spec):
    target: Name
    ms: float = Field(gt=0, le=60_000)
    jitter_ms: float = Field(0, ge=0, le=60_000)


class Load(_Spec):
    users: int = Field(ge=1, le=100_000)
    spawn_rate: float | None = Field(None, gt=0, le=10_000)


class ShedLogins(_Spec):
    """Each gateway lets at most ``per_s`` logins a second through to auth; the rest get 429 and Retry-After."""

    per_s: float = Field(gt=0, le=10_000)
    at: Name | None = None  # a data center or a gateway instance; None: every gateway


class DependencySetting(_Spec):
    """One dependency's policy changed live on its callers (``callers``: a data center, service or instance)."""

    callers: Name  # not `on`: YAML reads that word as a boolean
    dependency: DependencyName
    timeout_s: float | None = Field(None, gt=0, le=120)
    attempts: int | None = Field(None, ge=1, le=10)  # total tries, the first included
    breaker: bool | None = None

    @model_validator(mode="after")
    def _something(self) -> DependencySetting:
        if self.timeout_s is None and self.attempts is None and self.breaker is None:
            raise ValueError("give at least one of timeout_s, attempts, breaker")
        return self


class Deploy(_Spec):
    """A whole profile rolled out instance by instance, then to the users' edge."""

    profile: str = Field(min_length=1)
    step: Duration = Field(2.0, le=60)  # each instance's bake time before the next one gets it


class ActionBase(BaseModel):
    """What every action has; each kind is a subclass made by chaos.faults.actions from its declaration there."""

    model_config = ConfigDict(frozen=True)

    kind: str
    spec: Any
    duration_s: float | None = None  # `for`: revert this long after it was taken
    id: str | None = None

    def describe(self) -> str:
        spec = self.spec.model_dump(by_alias=True) if isinstance(self.spec, BaseModel) else self.spec
        return f"{self.kind} {spec}" + (f" for {self.duration_s:g}s" if self.duration_s is not None else "")

    def to_data(self) -> dict[str, Any]:
        spec = self.spec.model_dump(mode="json", by_alias=True) if isinstance(self.spec, BaseModel) else self.spec
        data: dict[str, Any] = {self.kind: list(spec) if isinstance(spec, tuple) else spec}
        if self.duration_s is not None:
            data["for"] = f"{self.duration_s:g}s"
        if self.id:
            data["id"] = self.id
        return data
