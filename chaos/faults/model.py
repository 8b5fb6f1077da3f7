"""The shapes of the actions a scenario timeline or the control API can take: durations, names and specs.

Which kinds exist, and what each one is and does, is declared once in chaos.faults.actions. A timeline step is ``{at: 20s, <action>: <spec>, for: 30s (optional), id: name (optional)}`` with exactly
one action key. ``for`` reverts the action that long after it was taken; without it a fault lasts until a
later step undoes it (``power_on`` after ``power_off``) or the run ends, when every rollback runs.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from services.common.names import ServiceName

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


class Brownout(_Spec):
    target: Name
    ms: float = Field(gt=0, le=60_000)
    jitter_ms: float = Field(0, ge=0, le=60_000)


class Load(_Spec):
    users: int = Field(ge=1, le=100_000)
    spawn_rate: float | None = Field(None, gt=0, le=10_000)


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
